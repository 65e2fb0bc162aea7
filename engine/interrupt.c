/* engine/interrupt.c — the interrupt flag. */
#include "engine/interrupt.h"

#include <signal.h>

#include "engine/error.h" // sdr_fail

static volatile sig_atomic_t interrupt_flag;

void sdr_interrupt_request(void) { interrupt_flag = 1; }
int sdr_interrupt_pending(void) { return interrupt_flag != 0; }
void sdr_interrupt_clear(void) { interrupt_flag = 0; }

int sdr_interrupt_check(void) {
  if (!interrupt_flag)
    return 0;
  interrupt_flag = 0;
  return sdr_fail("interrupted");
}
