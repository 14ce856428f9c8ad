// ThreadPool: a small persistent pool for the engine's data-parallel loops (matmul rows, attention
// heads, per-token ops). The calling thread takes part, so a pool of N threads starts N - 1 workers.
//
// ParallelFor(n, fn) runs fn(task, thread) for every task in [0, n), handing tasks out dynamically
// (an atomic counter), and returns when all are done. Dispatch allocates nothing: the callable is
// passed by reference through a function pointer. Idle workers spin briefly and then sleep on an
// atomic wait, so a decode loop issuing hundreds of dispatches per token does not pay a full futex
// wake each time, and an idle pool costs no CPU.
//
// Workers join a job; they do not all have to. The caller drains tasks itself, then closes the job
// to latecomers and waits only for the workers that joined, so a worker the OS has descheduled (a
// busy or oversubscribed machine) never stalls a dispatch it took no part in.
//
// Which thread runs which task is not deterministic; callers make results independent of it (each
// task writes its own outputs with a fixed reduction order).
//
// Thread safety: ParallelFor must be called by one thread at a time and never from inside a task.
// The destructor joins the workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace llmsync::engine {

class ThreadPool {
 public:
  // REQUIRES: n_threads >= 1.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int Size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(std::int64_t task, int thread) for task in [0, n_tasks); thread is in [0, Size()) and
  // identifies a thread uniquely while the call runs (for per-thread scratch buffers).
  template <typename Fn>
  void ParallelFor(std::int64_t n_tasks, Fn&& fn) {
    Run(n_tasks, &Trampoline<std::remove_reference_t<Fn>>, &fn);
  }

 private:
  using TaskFn = void (*)(void* ctx, std::int64_t task, int thread);

  template <typename Fn>
  static void Trampoline(void* ctx, std::int64_t task, int thread) {
    (*static_cast<Fn*>(ctx))(task, thread);
  }

  void Run(std::int64_t n_tasks, TaskFn fn, void* ctx);
  void WorkerLoop(int thread);
  bool TryJoin(std::uint64_t generation);
  void DrainTasks(int thread);

  std::vector<std::thread> workers_;
  // The current job; written by the caller before generation_ is released.
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::int64_t n_tasks_ = 0;
  std::atomic<std::int64_t> next_task_{0};
  std::atomic<std::uint64_t> generation_{0};  // bumped once per job; workers wait on it
  // (generation & 0xffffffff) << 32 | joined workers << 1 | closed. A worker joins by CAS only
  // while the generation matches the job it saw and the job is open.
  std::atomic<std::uint64_t> job_state_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace llmsync::engine
