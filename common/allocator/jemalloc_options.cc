// jemalloc's options for the service executables (common/allocator/CMakeLists.txt
// links this file and jemalloc into each of them; nothing else includes it).
//
// jemalloc reads this symbol once, at its first allocation; MALLOC_CONF in the
// environment still applies over it.
//
// narenas:2 (jemalloc's default here is 4 per core, 8 on these 2-core
// machines): a big plan is read, copied and freed whole by many handler
// threads, and with fewer arenas its peak stays lower (the memory one
// thread freed serves the next one's allocations sooner; glibc needed
// M_ARENA_MAX=2 for the same reason). bench/bigplan (one application of
// 20,000 objects), 3 repeats each, peak RSS min / median / max:
//   jemalloc, 8 arenas:  planner 405 / 410 / 531 MiB, deployer 286 / 289 / 295 MiB;
//   jemalloc, 2 arenas:  planner 347 / 359 / 379 MiB, deployer 220 / 232 / 234 MiB
//                        (328 / 330 / 389 and 230 / 231 / 253 set by MALLOC_CONF);
// glibc with M_ARENA_MAX=2 and a 256 KiB mmap threshold, what the planner
// and deployer set before (bench/results/bigplan.md of 2026-12-06, the same
// machine kind): planner 369 / 411 / 444 MiB, deployer 247 / 249 / 255 MiB.
// Faster purging (dirty_decay_ms:1000, muzzy_decay_ms:0) took both lower
// still but the deploy of the 20,000 objects from 24 to 29 s (medians; the
// system time of madvise and page faults).
extern "C" {
const char* malloc_conf = "narenas:2";
}
