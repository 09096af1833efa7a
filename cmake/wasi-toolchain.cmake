# CMake toolchain for WASI preview1 with Debian's clang + wasi-libc (no sysroot needed).
#   cmake -S . -B build-wasi -DCMAKE_TOOLCHAIN_FILE=cmake/wasi-toolchain.cmake [-DCMAKE_C_COMPILER=clang-19]
# Executables get a .wasm suffix (Platform/WASI.cmake) and run under node:wasi (run-wasi.mjs),
# which CTest uses as the cross-compiling emulator. See docs/wasm-build.md, quirks W1-W4.
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER clang-14)   # clang-19 also verified
endif()
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_AR llvm-ar-14 CACHE FILEPATH "")
set(CMAKE_RANLIB llvm-ranlib-14 CACHE FILEPATH "")
# Debian clang searches /usr/local/include and /usr/include for wasm32-wasi too: keep glibc headers out (W1)
set(CMAKE_C_FLAGS_INIT "-nostdlibinc -isystem /usr/include/wasm32-wasi")
# strip wasi-libc's debug info; NOT --strip-all, which drops target_features and breaks wasm-opt (W3)
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wno-unused-command-line-argument -Wl,--strip-debug")
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")  # Platform/WASI.cmake
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH /usr/lib/wasm32-wasi /usr/include/wasm32-wasi)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# --single-threaded: node 20.20 here crashes intermittently (SIGSEGV/SIGBUS in V8 after a WASI module
# returns, ~70% of runs of test_tokenizer) unless V8 runs without its background threads
set(CMAKE_CROSSCOMPILING_EMULATOR node --no-warnings --single-threaded ${CMAKE_CURRENT_LIST_DIR}/run-wasi.mjs)
