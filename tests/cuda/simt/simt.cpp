/* tests/cuda/simt/simt.cpp — the fibers behind simt.h: one stack per thread of the
 * running block, a scheduler that runs each warp's threads up to their next barrier,
 * then releases the barriers every thread concerned has reached.
 *
 * Switching between fibers is the simulation's main cost (a UNet call launches
 * millions of threads): on x86-64 it is a few instructions of our own (the
 * callee-saved registers and the stack pointer, as the System V ABI defines them),
 * elsewhere ucontext's swapcontext, which also saves the signal mask (a system call
 * each way). Stacks are kept from one launch to the next.
 */
#include "simt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace simt {

enum { RUN, AT_BLOCK, AT_WARP, DONE };
enum { STACK = 128 << 10 };

/* ---- switching stacks ---- */

#if defined(__x86_64__)
/* simt_switch(&from, to): saves rbp, rbx, r12-r15 on the current stack, stores its
 * pointer in *from, and continues on `to` where a simt_switch saved it (or where
 * fiber_init laid out a first frame). */
extern "C" void simt_switch(void **from, void *to);
asm(".text\n"
    ".globl simt_switch\n"
    ".type simt_switch,@function\n"
    "simt_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size simt_switch,.-simt_switch\n");

typedef struct {
  void *sp;
} fiber_ctx;

static void fiber_init(fiber_ctx *c, unsigned char *stack, size_t size, void (*fn)()) {
  uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
  void **sp = (void **)top;
  *--sp = NULL;        /* fn's return address: fn never returns */
  *--sp = (void *)fn;  /* where simt_switch's ret goes */
  for (int i = 0; i < 6; i++)
    *--sp = NULL;      /* rbp rbx r12-r15 */
  c->sp = sp;
}
static void fiber_switch(fiber_ctx *from, fiber_ctx *to) { simt_switch(&from->sp, to->sp); }
#else
typedef ucontext_t fiber_ctx;
static void fiber_init(fiber_ctx *c, unsigned char *stack, size_t size, void (*fn)()) {
  getcontext(c);
  c->uc_stack.ss_sp = stack;
  c->uc_stack.ss_size = size;
  c->uc_link = NULL;
  makecontext(c, fn, 0);
}
static void fiber_switch(fiber_ctx *from, fiber_ctx *to) { swapcontext(from, to); }
#endif

struct thread_state {
  fiber_ctx ctx;
  uint3 tid;
  int lane, warp, state;
  unsigned char *stack; /* from the pool below */
};

/* stacks for up to 1024 threads, made once (untouched pages cost nothing) */
static unsigned char *stack_pool[1024];
static unsigned char *stack_for(size_t i) {
  if (!stack_pool[i] && !(stack_pool[i] = (unsigned char *)malloc(STACK))) {
    fprintf(stderr, "simt: out of memory for a thread's stack\n");
    exit(3);
  }
  return stack_pool[i];
}

struct warp_slots_t {
  unsigned char x[32][64];
};

struct block_state {
  fiber_ctx sched;
  uint3 bid;
  dim3 bdim, gdim;
  std::vector<thread_state> th;
  std::vector<warp_slots_t> slots; /* per warp */
  const std::function<void()> *body;
};

static block_state *blk;
static thread_state *cur;
enum { SHARED_MAX = 232448 }; /* an H200 block's opt-in limit */
alignas(256) static unsigned char shared_mem[SHARED_MAX];

const uint3 &thread_idx() { return cur->tid; }
const uint3 &block_idx() { return blk->bid; }
const dim3 &block_dim() { return blk->bdim; }
const dim3 &grid_dim() { return blk->gdim; }
int lane() { return cur->lane; }
unsigned char (*warp_slots())[64] { return blk->slots[cur->warp].x; }

void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "simt: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (blk && cur)
    fprintf(stderr, "simt: in block (%u, %u, %u), thread (%u, %u, %u)\n", blk->bid.x, blk->bid.y,
            blk->bid.z, cur->tid.x, cur->tid.y, cur->tid.z);
  exit(3);
}

static void wait_as(int state) {
  thread_state *me = cur;
  me->state = state;
  fiber_switch(&me->ctx, &blk->sched);
  cur = me;
}

void block_sync() { wait_as(AT_BLOCK); }
void warp_sync() { wait_as(AT_WARP); }

unsigned char *dynamic_shared_base() { return shared_mem; }

static void entry() {
  (*blk->body)();
  cur->state = DONE;
  fiber_switch(&cur->ctx, &blk->sched); /* never resumed */
  abort();
}

static int descending; /* the order warps run in (set_warp_order) */

void set_warp_order(int desc) { descending = desc; }

/* Runs warp w's lanes until none can go on without the other warps: each lane up
 * to its next barrier, the warp's barrier released whenever all its live lanes
 * reached it. */
static void run_warp(block_state *b, size_t w) {
  const size_t lo = w * 32, hi = std::min(b->th.size(), lo + 32);
  for (;;) {
    for (size_t i = lo; i < hi; i++)
      if (b->th[i].state == RUN) {
        cur = &b->th[i];
        fiber_switch(&b->sched, &b->th[i].ctx);
      }
    size_t live = 0, at_warp = 0;
    for (size_t i = lo; i < hi; i++)
      if (b->th[i].state != DONE) {
        live++;
        at_warp += b->th[i].state == AT_WARP;
      }
    if (live == 0 || at_warp != live)
      return;
    for (size_t i = lo; i < hi; i++)
      b->th[i].state = RUN;
  }
}

void run(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
  const size_t n = (size_t)block.x * block.y * block.z;
  if (n == 0 || n > 1024)
    fail("a block of %zu threads", n);
  if (smem > SHARED_MAX)
    fail("%zu bytes of dynamic shared memory asked, %d the most a block gets", smem,
         (int)SHARED_MAX);
  block_state b;
  b.gdim = grid;
  b.bdim = block;
  b.th.resize(n);
  b.slots.resize((n + 31) / 32);
  b.body = &body;
  for (size_t i = 0; i < n; i++)
    b.th[i].stack = stack_for(i);
  blk = &b;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        b.bid = make_uint3(bx, by, bz);
        memset(shared_mem, 0xff, smem); /* the dynamic part: what the kernel asked for */
        for (size_t i = 0; i < n; i++) {
          thread_state &t = b.th[i];
          t.tid = make_uint3((unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                             (unsigned)(i / ((size_t)block.x * block.y)));
          t.lane = (int)(i % 32);
          t.warp = (int)(i / 32);
          t.state = RUN;
          fiber_init(&t.ctx, t.stack, STACK, entry);
        }
        /* Each warp runs as far as it can before the next one starts (in ascending
         * or descending order): a missing __syncthreads then lets one warp overwrite
         * or read shared memory another still needs, which shows in the results. */
        const size_t nw = b.slots.size();
        for (;;) {
          for (size_t k = 0; k < nw; k++)
            run_warp(&b, descending ? nw - 1 - k : k);
          size_t live = 0, at_block = 0;
          for (auto &t : b.th)
            if (t.state != DONE) {
              live++;
              at_block += t.state == AT_BLOCK;
            }
          if (live == 0)
            break;
          if (at_block == live) {
            for (auto &t : b.th)
              t.state = RUN;
            continue;
          }
          cur = NULL;
          fprintf(stderr, "simt: block (%u, %u, %u) cannot go on; threads:", bx, by, bz);
          for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %zu:%s", i,
                    b.th[i].state == AT_BLOCK  ? "syncthreads"
                    : b.th[i].state == AT_WARP ? "warp"
                                               : "done");
          fprintf(stderr, "\n");
          blk = NULL;
          fail("a barrier that some threads never reach");
        }
      }
  blk = NULL;
  cur = NULL;
}

} // namespace simt
