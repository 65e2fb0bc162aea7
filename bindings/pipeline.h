/* bindings/pipeline.h — StableDiffusionPipeline and StableDiffusionImg2ImgPipeline for Lua,
 * and the classes that load one of them. */
#ifndef SDR_BINDINGS_PIPELINE_H
#define SDR_BINDINGS_PIPELINE_H

#include <lua.h>

void lsdr_open_pipeline(lua_State *L);
/* DiffusionPipeline, AutoPipelineForText2Image, AutoPipelineForImage2Image
 * (bindings/auto_pipeline.c). */
void lsdr_open_auto_pipeline(lua_State *L);

#endif
