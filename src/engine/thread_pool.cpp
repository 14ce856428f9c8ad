#include "engine/thread_pool.h"

#include <cassert>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace llmsync::engine {
namespace {

// How long an idle worker polls before sleeping, and the caller before yielding. A decode step
// dispatches a job every few tens of microseconds, well inside the spin window.
constexpr int kSpinIterations = 20000;

constexpr std::uint64_t kClosed = 1;
constexpr std::uint64_t kJoinedOne = 2;
constexpr std::uint64_t kJoinedMask = 0xfffffffeULL;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  assert(n_threads >= 1);
  for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::DrainTasks(int thread) {
  for (;;) {
    std::int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) return;
    fn_(ctx_, task, thread);
  }
}

void ThreadPool::Run(std::int64_t n_tasks, TaskFn fn, void* ctx) {
  if (n_tasks <= 0) return;
  if (workers_.empty() || n_tasks == 1) {
    for (std::int64_t task = 0; task < n_tasks; ++task) fn(ctx, task, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  const std::uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
  job_state_.store(generation << 32, std::memory_order_release);  // open, nobody joined
  generation_.store(generation, std::memory_order_release);
  generation_.notify_all();
  DrainTasks(0);
  job_state_.fetch_or(kClosed, std::memory_order_acq_rel);
  for (int spins = 0; (job_state_.load(std::memory_order_acquire) & kJoinedMask) != 0; ++spins) {
    if (spins < kSpinIterations) {
      CpuRelax();
    } else {
      std::this_thread::yield();  // a joined worker was descheduled mid-task; let it finish
    }
  }
}

bool ThreadPool::TryJoin(std::uint64_t generation) {
  std::uint64_t state = job_state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) != (generation & 0xffffffffULL) || (state & kClosed) != 0) return false;
    if (job_state_.compare_exchange_weak(state, state + kJoinedOne, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      return true;
    }
  }
}

void ThreadPool::WorkerLoop(int thread) {
  std::uint64_t seen = 0;
  for (;;) {
    std::uint64_t current = generation_.load(std::memory_order_acquire);
    for (int spins = 0; current == seen && spins < kSpinIterations; ++spins) {
      CpuRelax();
      current = generation_.load(std::memory_order_acquire);
    }
    if (current == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      continue;
    }
    seen = current;
    if (stop_.load(std::memory_order_acquire)) return;
    if (!TryJoin(seen)) continue;  // the caller already finished this job
    DrainTasks(thread);
    job_state_.fetch_sub(kJoinedOne, std::memory_order_release);
  }
}

}  // namespace llmsync::engine
