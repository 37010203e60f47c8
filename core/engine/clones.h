// Function multiversioning for the CPU's hot loops (internal to core): QMPP_CLONES builds a
// function for AVX2+FMA and for baseline x86-64, and the loader picks the clone the processor
// runs (no -march needed, binaries stay portable). Off under sanitizers and other compilers.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define QMPP_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define QMPP_CLONES
#endif
