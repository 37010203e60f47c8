// OpenMP, optional (internal to core/engine). Per-thread scratch is allocated before a parallel
// region, never inside it: an exception cannot leave an OpenMP region (the runtime terminates),
// so out of memory must happen on the calling thread, where it becomes exit 4.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace qmpp::par {

// Threads a parallel region may use, and this thread's index within one.
inline int maxThreads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
inline int threadCount() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}
inline int threadId() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Sets this thread's team size for the parallel regions that follow, for `work` multiply-adds:
// one thread when the work is small (forking and joining cost more than they save), else the
// cores that other processes left idle over the last tenth of a second or more (from
// /proc/stat, less this process's own use), at least one. A desktop is rarely idle: threads
// that wait for a core another program holds only add barriers' waiting. Returns the count.
int useThreadsFor(double work);

} // namespace qmpp::par
