# Cross build for AArch64 Linux with Debian's gcc-aarch64-linux-gnu and the
# arm64 multiarch libraries (dpkg --add-architecture arm64). Test binaries run
# through qemu-aarch64-static, so ctest works on an x86-64 host.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(BALM_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${BALM_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${BALM_CROSS_TRIPLE}-g++)

# Multiarch: arm64 headers live in /usr/include (shared), libraries in
# /usr/lib/aarch64-linux-gnu; the cross libc is in /usr/aarch64-linux-gnu.
set(CMAKE_FIND_ROOT_PATH /usr/${BALM_CROSS_TRIPLE} /usr/lib/${BALM_CROSS_TRIPLE})
set(CMAKE_LIBRARY_ARCHITECTURE ${BALM_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Never pick up an x86-64 library from the host's default paths.
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

# ctest and add_test run target binaries through the emulator. No "-L
# /usr/aarch64-linux-gnu": with a sysroot prefix, qemu-aarch64 7.2 hangs the
# child of every fork() (test_dispatch and test_threads fork). The arm64
# loader and libraries come from the multiarch packages instead (libc6:arm64
# is a dependency of libcmocka0:arm64): /lib/ld-linux-aarch64.so.1 and
# /usr/lib/aarch64-linux-gnu.
find_program(BALM_QEMU_AARCH64 qemu-aarch64-static qemu-aarch64)
if(BALM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BALM_QEMU_AARCH64})
endif()

# Debian's aarch64 GCC 12 crashes in the -O3 loop vectorizer on some of the
# tests (internal compiler error in vect_transform_reduction); -O2 is fine.
set(CMAKE_C_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "C flags for Release builds (cross)")
set(CMAKE_CXX_FLAGS_RELEASE "-O2 -DNDEBUG" CACHE STRING "C++ flags for Release builds (cross)")
