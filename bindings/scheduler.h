/* bindings/scheduler.h — diffusers' scheduler classes for Lua (PNDMScheduler, ...). */
#ifndef SDR_BINDINGS_SCHEDULER_H
#define SDR_BINDINGS_SCHEDULER_H

#include <stdint.h>

#include <lua.h>

#include "engine/scheduler.h" // sdr_scheduler

#define LSDR_SCHEDULER "Scheduler"

/* Sets the globals PNDMScheduler, DDIMScheduler, LMSDiscreteScheduler,
 * EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
 * UniPCMultistepScheduler, HeunDiscreteScheduler, DDPMScheduler, KDPM2DiscreteScheduler,
 * KDPM2AncestralDiscreteScheduler, DEISMultistepScheduler, DPMSolverSinglestepScheduler,
 * LCMScheduler. */
void lsdr_open_scheduler(lua_State *L);
/* Pushes a scheduler object that owns s. */
void lsdr_push_scheduler(lua_State *L, sdr_scheduler *s);
/* The scheduler at idx, or NULL when it is not one. */
sdr_scheduler *lsdr_to_scheduler(lua_State *L, int idx);
/* A list of timesteps at idx (integers, as Python's List[int]) into a userdata pushed on
 * the stack, *n of them; raises naming `what` for anything else. */
const int64_t *lsdr_read_timesteps(lua_State *L, int idx, const char *what, int *n);

#endif
