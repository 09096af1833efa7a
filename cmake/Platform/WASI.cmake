# Without this file CMake warns "System is unknown to cmake" and executables get no .wasm suffix (W4).
set(WASI 1)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
