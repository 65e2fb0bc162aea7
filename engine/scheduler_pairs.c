/* engine/scheduler_pairs.c — what Heun's and the two KDPM2 classes share: each of their
 * steps is a pair of step() calls (one model call each), the first keeping the sample
 * for the second, and the pair's state says which half comes (diffusers' `self.sample is
 * None` or `self.dt is None`), not the index's parity. */
#include "engine/error.h" // sdr_fail
#include "engine/scheduler_internal.h"

int sched_pair_half(sdr_scheduler *s, double t, int ahead) {
  if (s->step_index < 0 && sched_init_step_index(s, t, 0) != 0)
    return -1;
  int i = s->step_index, first = !s->heun_second;
  if (!first && !s->has_cur_sample)
    return sdr_fail("%s.step: this run's history was released; call set_timesteps to start "
                    "a new run",
                    s->cls->name);
  if (i + (first ? ahead : 0) >= s->n_sigmas || i - !first < 0)
    return sdr_fail("%s.step: no step after the last timestep", s->cls->name);
  return first;
}

int sched_pair_move(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *d, const sdr_tensor *model_output,
                    const sdr_tensor *sample, float sigma_input, float div, float dt) {
  sdr_tensor x0;
  if (sched_temp(cx, &x0, sample) != 0)
    return -1;
  if (s->c.prediction == SCHED_EPSILON) { /* x0 = sample - sigma_input * model_output */
    if (sched_mul(cx, d, model_output, sigma_input) != 0 || sched_sub(cx, &x0, sample, d) != 0)
      return -1;
  } else if (sched_x0_from_v(cx, &x0, model_output, sample, sigma_input) != 0) {
    return -1;
  }
  return sched_sub(cx, d, sample, &x0) || sched_div(cx, d, d, div) || sched_mul(cx, d, d, dt);
}

int sched_pair_finish(sdr_scheduler *s, sched_ctx *cx, sdr_tensor *out, const sdr_tensor *sample,
                      const sdr_tensor *d, int first) {
  sdr_tensor kept;
  if (sched_slot(cx, SCHED_SLOT_CUR_SAMPLE, sample, &kept) != 0)
    return -1;
  s->step_index++;
  if (first) {
    if (sched_copy(cx, &kept, sample) != 0)
      return -1;
    s->heun_second = s->has_cur_sample = 1;
    return sched_add(cx, out, sample, d);
  }
  s->heun_second = s->has_cur_sample = 0;
  return sched_add(cx, out, &kept, d);
}
