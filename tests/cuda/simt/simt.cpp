/* tests/cuda/simt/simt.cpp — the fibers behind simt.h: one ucontext per thread of
 * the running block, a scheduler that runs every runnable thread up to its next
 * barrier, then releases the barriers every thread concerned has reached. */
#include "simt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include <vector>

namespace simt {

enum { RUN, AT_BLOCK, AT_WARP, DONE };
enum { STACK = 256 << 10 };

struct thread_state {
  ucontext_t ctx;
  uint3 tid;
  int lane, warp, state;
  std::vector<unsigned char> stack;
};

struct warp_slots_t {
  unsigned char x[32][64];
};

struct block_state {
  ucontext_t sched;
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
  swapcontext(&me->ctx, &blk->sched);
  cur = me;
}

void block_sync() { wait_as(AT_BLOCK); }
void warp_sync() { wait_as(AT_WARP); }

unsigned char *dynamic_shared_base() { return shared_mem; }

static void entry() {
  (*blk->body)();
  cur->state = DONE; /* uc_link takes it back to the scheduler */
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
        swapcontext(&b->sched, &b->th[i].ctx);
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
    b.th[i].stack.resize(STACK);
  blk = &b;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        b.bid = make_uint3(bx, by, bz);
        memset(shared_mem, 0xff, sizeof shared_mem);
        for (size_t i = 0; i < n; i++) {
          thread_state &t = b.th[i];
          t.tid = make_uint3((unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                             (unsigned)(i / ((size_t)block.x * block.y)));
          t.lane = (int)(i % 32);
          t.warp = (int)(i / 32);
          t.state = RUN;
          getcontext(&t.ctx);
          t.ctx.uc_stack.ss_sp = t.stack.data();
          t.ctx.uc_stack.ss_size = t.stack.size();
          t.ctx.uc_link = &b.sched;
          makecontext(&t.ctx, entry, 0);
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
