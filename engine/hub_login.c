/* engine/hub_login.c — checking a token: huggingface_hub's HfApi.whoami and
 * get_token_permission (GET {endpoint}/api/whoami-v2 with the token). */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h" // sdr_fail
#include "engine/hub_internal.h"

int sdr_hub_whoami(const char *token, char **user, char **role) {
  *user = *role = NULL;
  if (!token || !*token)
    return sdr_fail("no token given");
  /* _login: an organization's API token cannot log in. */
  if (strncmp(token, "api_org", 7) == 0)
    return sdr_fail("this is an organization token: log in with a token of your own account");
  char *endpoint = sdr_hub_endpoint();
  char *url = endpoint ? hub_printf("%s/api/whoami-v2", endpoint) : NULL;
  hub_response r;
  int rc = -1;
  if (!url || hub_request("GET", url, token, &r) != 0) {
    free(endpoint);
    free(url);
    return -1;
  }
  if (r.status == 0) {
    sdr_fail("cannot reach %s to check the token: %s", endpoint, r.net_error);
  } else if (r.status == 401 || r.status == 403) {
    sdr_fail("invalid token (HTTP %ld from %s): copy a token from %s/settings/tokens and try again",
             r.status, url, endpoint);
  } else if (r.status != 200) {
    sdr_fail("HTTP %ld from %s while checking the token", r.status, url);
  } else {
    cJSON *root = cJSON_ParseWithLength(r.body ? r.body : "", r.body_len);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(root, "auth");
    const cJSON *access = cJSON_GetObjectItemCaseSensitive(auth, "accessToken");
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(access, "role");
    if (!cJSON_IsString(name)) {
      sdr_fail("%s did not answer as the Hugging Face hub does (no user name): check HF_ENDPOINT",
               url);
    } else {
      *user = hub_printf("%s", name->valuestring);
      *role = hub_printf("%s", cJSON_IsString(perm) ? perm->valuestring : "");
      if (*user && *role) {
        rc = 0;
      } else {
        free(*user);
        free(*role);
        *user = *role = NULL;
      }
    }
    cJSON_Delete(root);
  }
  hub_response_free(&r);
  free(endpoint);
  free(url);
  return rc;
}
