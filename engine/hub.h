/* engine/hub.h — models from the Hugging Face hub, fetched into huggingface_hub's cache.
 *
 * A repo id such as "CompVis/stable-diffusion-v1-4" becomes a local folder the
 * way diffusers 0.27 (DiffusionPipeline.download) and huggingface_hub 0.22
 * (snapshot_download, hf_hub_download) make one, in the same cache, so a model
 * Python downloaded is used as is and one we download is Python's too:
 *
 *   $HF_HUB_CACHE/models--{org}--{name}/
 *     blobs/{etag}                       the files' bytes, named by ETag
 *     snapshots/{commit}/{path}          relative links to ../../blobs/{etag}
 *     refs/{revision}                    the commit a branch or tag was at
 *   $HF_HUB_CACHE/.locks/models--{org}--{name}/{etag}.lock   (flock, as filelock)
 *
 * Where things are: HF_ENDPOINT (https://huggingface.co), HF_HOME
 * ($XDG_CACHE_HOME/huggingface or ~/.cache/huggingface), HF_HUB_CACHE
 * ($HF_HOME/hub); the token from the caller, else HF_TOKEN, else $HF_HOME/token;
 * HF_HUB_OFFLINE=1 asks nothing of the network. When the hub cannot be asked
 * (no network, a server error, no access) a cached snapshot of the revision is
 * used, as huggingface_hub does, and `note` says why.
 *
 * Only what is needed is fetched: for a pipeline model_index.json first, then
 * each component's config and weights as DiffusionPipeline.download chooses
 * them (safetensors when every .bin has one, the variant's files where they
 * exist), the tokenizer's files and the scheduler's config. A blob is written
 * as blobs/{etag}.incomplete and renamed when whole, under the lock; a killed
 * download resumes with a Range request. One progress bar per file.
 */
#ifndef SDR_ENGINE_HUB_H
#define SDR_ENGINE_HUB_H

/* What a from_pretrained loads, which decides the files it needs. */
typedef enum sdr_hub_kind {
  SDR_HUB_PIPELINE,          /* model_index.json and the components (DiffusionPipeline) */
  SDR_HUB_MODEL,             /* <subfolder>/config.json and weights (ModelMixin, PreTrainedModel) */
  SDR_HUB_TOKENIZER,         /* <subfolder>/vocab.json, merges.txt, ... (CLIPTokenizer) */
  SDR_HUB_SCHEDULER,         /* <subfolder>/scheduler_config.json (SchedulerMixin) */
  SDR_HUB_TEXTUAL_INVERSION, /* <subfolder>/weight_name, else learned_embeds.safetensors
                                (when there and allowed) or learned_embeds.bin */
  SDR_HUB_LORA,              /* <subfolder>/weight_name, else the one LoRA file there
                                (sdr_lora_best_guess: .safetensors, else .bin) */
  SDR_HUB_FILE,              /* <subfolder>/weight_name exactly (from_single_file's link) */
} sdr_hub_kind;

typedef struct sdr_hub_options {
  const char *revision;    /* branch, tag or commit sha; NULL: "main" */
  const char *subfolder;   /* for one component; NULL or "": the repo's root */
  const char *variant;     /* e.g. "fp16": <stem>.fp16.<ext> where the repo has it */
  const char *weight_name; /* SDR_HUB_TEXTUAL_INVERSION, SDR_HUB_LORA: the file; NULL: the usual */
  int use_safetensors;     /* 1: only .safetensors, 0: only .bin, -1: safetensors if complete */
  const char *cache_dir;   /* NULL: HF_HUB_CACHE */
  const char *token;       /* NULL: HF_TOKEN or $HF_HOME/token (unless no_token) */
  int no_token;            /* token = false: send none */
  int local_files_only;    /* only the cache (also when HF_HUB_OFFLINE=1) */
  /* SDR_HUB_PIPELINE: the components to fetch, NULL-terminated; NULL: every one
   * model_index.json names. Others are left out as diffusers leaves out passed ones. */
  const char *const *components;
  char note[512]; /* out: "" or why a cached copy was used without asking the hub */
} sdr_hub_options;

/* huggingface_hub's validate_repo_id: "name" or "namespace/name" of [A-Za-z0-9_.-],
 * at most 96 characters, no "--" or "..", not starting or ending with '-' or '.'. */
int sdr_hub_is_repo_id(const char *s);

/* Returns the malloc'd snapshot folder (the repo's root, not the subfolder)
 * holding what `kind` needs from repo_id, fetching what is missing; NULL and
 * sdr_fail with what to do (log in, check the name, the network, the disk). */
char *sdr_hub_snapshot(const char *repo_id, sdr_hub_kind kind, sdr_hub_options *o);

/* ---- where things are (huggingface_hub.constants) ------------------------ */

/* HF_ENDPOINT without a trailing '/', or https://huggingface.co. malloc'd. */
char *sdr_hub_endpoint(void);
/* HF_HOME, HF_HUB_CACHE and HF_HOME/token. malloc'd; NULL when no home is known. */
char *sdr_hub_home(void);
char *sdr_hub_cache_dir(void);
char *sdr_hub_token_path(void);
/* HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1, ON, YES or TRUE. */
int sdr_hub_offline(void);
/* HF_HUB_DISABLE_IMPLICIT_TOKEN is true: send a token only when one is given. */
int sdr_hub_implicit_token_off(void);
/* get_token(): HF_TOKEN (or HUGGING_FACE_HUB_TOKEN), else the token file,
 * stripped; NULL when there is none. malloc'd. */
char *sdr_hub_get_token(void);

/* ---- logging in (huggingface_hub._login) --------------------------------- */

/* whoami(token): GET {endpoint}/api/whoami-v2. On success *user and *role
 * (the token's "read"/"write", or "") are malloc'd; -1 and sdr_fail when the
 * token is refused or the hub cannot be reached. */
int sdr_hub_whoami(const char *token, char **user, char **role);
/* Writes the token to $HF_HOME/token (mode 0600, atomically). Returns the
 * malloc'd path, or NULL and sdr_fail. */
char *sdr_hub_save_token(const char *token);

#endif
