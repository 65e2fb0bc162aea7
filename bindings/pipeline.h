/* bindings/pipeline.h — StableDiffusionPipeline and StableDiffusionImg2ImgPipeline for Lua. */
#ifndef SDR_BINDINGS_PIPELINE_H
#define SDR_BINDINGS_PIPELINE_H

#include <lua.h>

void lsdr_open_pipeline(lua_State *L);

#endif
