/* engine/json_python.h — JSON as Python's json module writes it.
 *
 * diffusers saves configs with json.dumps, which writes float infinities as
 * Infinity and -Infinity (DPMSolverMultistepScheduler's lambda_min_clipped is
 * -Infinity) and NaN as NaN. Strict JSON parsers, cJSON among them, refuse
 * those words; this parses them as the numbers Python meant.
 */
#ifndef SDR_ENGINE_JSON_PYTHON_H
#define SDR_ENGINE_JSON_PYTHON_H

#include <cJSON.h>

/* cJSON_Parse, with Infinity, -Infinity and NaN outside strings accepted. */
cJSON *sdr_json_parse_python(const char *text);
/* cJSON_Print, with an object's non-finite numbers written Infinity, -Infinity and NaN (cJSON
 * writes null, which Python reads as None). Malloc'd, NULL when out of memory. */
char *sdr_json_print_python(const cJSON *obj);

#endif
