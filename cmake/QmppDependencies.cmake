# Finds every dependency once and sets QMPP_HAVE_* for the feature summary.

# The CUDA toolkit is optional: the engine draws its Gumbel uniforms with its own Philox4x32-10
# (core/engine/philox.cpp), so a CPU-only build needs no toolkit. Where the toolkit is found, the
# tests check those numbers bit for bit against cuRAND's host generator, and nvcc builds the
# kernels. -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON hides an installed toolkit.
set(QMPP_HAVE_CUDA OFF)
set(QMPP_HAVE_CURAND OFF)
find_package(CUDAToolkit QUIET)
if(TARGET CUDA::curand)
  set(QMPP_HAVE_CURAND ON)
endif()

# nvcc is optional: AUTO builds the kernels when it is found.
if(NOT QMPP_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND AND EXISTS "${CUDAToolkit_BIN_DIR}/nvcc")
    set(CMAKE_CUDA_COMPILER "${CUDAToolkit_BIN_DIR}/nvcc")
  endif()
  if(CUDAToolkit_FOUND)
    check_language(CUDA)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
    set(CMAKE_CUDA_ARCHITECTURES "${QMPP_CUDA_ARCHITECTURES}")
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(QMPP_HAVE_CUDA ON)
  elseif(QMPP_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "QMPP_WITH_CUDA=ON but the CUDA toolkit with nvcc was not found")
  endif()
endif()

find_package(OpenMP)

# Header-only libraries: Debian's packages, or copies in QMPP_DEPS_DIR (scripts/gpu-deps.sh).
find_package(nlohmann_json 3.10 QUIET)
if(NOT nlohmann_json_FOUND)
  find_path(QMPP_JSON_INCLUDE nlohmann/json.hpp HINTS "${QMPP_DEPS_DIR}/include" REQUIRED)
  add_library(nlohmann_json INTERFACE)
  target_include_directories(nlohmann_json SYSTEM INTERFACE "${QMPP_JSON_INCLUDE}")
  add_library(nlohmann_json::nlohmann_json ALIAS nlohmann_json)
endif()
find_package(CLI11 QUIET)
if(NOT CLI11_FOUND)
  find_path(QMPP_CLI11_INCLUDE CLI/CLI.hpp HINTS "${QMPP_DEPS_DIR}/include" REQUIRED)
  add_library(CLI11 INTERFACE)
  target_include_directories(CLI11 SYSTEM INTERFACE "${QMPP_CLI11_INCLUDE}")
  add_library(CLI11::CLI11 ALIAS CLI11)
endif()

# OpenCV: only the four module packages (no OpenCVConfig.cmake), so find them by hand.
set(QMPP_HAVE_OPENCV OFF)
find_path(QMPP_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4)
set(_qmpp_cv_libs)
foreach(_m core imgproc imgcodecs videoio)
  find_library(QMPP_OPENCV_${_m} opencv_${_m})
  list(APPEND _qmpp_cv_libs ${QMPP_OPENCV_${_m}})
endforeach()
if(QMPP_OPENCV_INCLUDE AND QMPP_OPENCV_core AND QMPP_OPENCV_imgproc AND QMPP_OPENCV_imgcodecs
   AND QMPP_OPENCV_videoio)
  add_library(qmpp_opencv INTERFACE)
  target_include_directories(qmpp_opencv SYSTEM INTERFACE "${QMPP_OPENCV_INCLUDE}")
  target_link_libraries(qmpp_opencv INTERFACE ${_qmpp_cv_libs})
  set(QMPP_HAVE_OPENCV ON)
endif()

# Qt 6 (the studio and the Qt Test suite).
set(QMPP_HAVE_QT OFF)
set(QMPP_HAVE_TESTS OFF)
if(QMPP_WITH_QT)
  find_package(Qt6 REQUIRED COMPONENTS Core Gui Widgets PrintSupport Svg Test)
  find_package(QCustomPlotQt6 REQUIRED)
  set(QMPP_HAVE_QT ON)
  if(QMPP_BUILD_TESTS)
    set(QMPP_HAVE_TESTS ON)
  endif()
elseif(QMPP_BUILD_TESTS)
  find_package(Qt6 QUIET COMPONENTS Core Gui Test)
  if(Qt6Test_FOUND)
    set(QMPP_HAVE_TESTS ON)
  else()
    message(STATUS "Qt 6 Test not found: the test suite is skipped (use `qmpp check` on GPU hosts)")
  endif()
endif()

# Python (the `qmpp` module, app/python): pybind11 over the engine. AUTO builds it when Python's
# headers and pybind11 are found. On Debian, /usr/bin/python3 is the Python that has numpy and
# pytest from Debian's packages; a developer's PATH may hold another, so it is the default. Pass
# -DPython3_EXECUTABLE=... for another (the GPU machine's own Python).
set(QMPP_HAVE_PYTHON OFF)
if(NOT QMPP_WITH_PYTHON STREQUAL "OFF")
  if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
    set(Python3_EXECUTABLE /usr/bin/python3)
  endif()
  find_package(Python3 COMPONENTS Interpreter Development.Module)
  if(Python3_FOUND)
    # The interpreter's own pybind11 first (pip's, as on the GPU machine: it matches that
    # Python and its numpy), then Debian's pybind11-dev, then a copy in QMPP_DEPS_DIR.
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import pybind11; print(pybind11.get_cmake_dir())"
                    OUTPUT_VARIABLE _qmpp_pybind11_dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    find_package(pybind11 2.6 CONFIG QUIET HINTS ${_qmpp_pybind11_dir} "${QMPP_DEPS_DIR}/share/cmake/pybind11")
    # numpy 2 changed the array descriptor that pybind11 reads (2.12 follows it); Python 3.12
    # needs 2.11. An older pybind11 would build a module that misreads dtypes or crashes.
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import numpy; print(numpy.__version__.split('.')[0])"
                    OUTPUT_VARIABLE _qmpp_numpy_major OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(pybind11_FOUND AND ((_qmpp_numpy_major GREATER_EQUAL 2 AND pybind11_VERSION VERSION_LESS 2.12)
                           OR (Python3_VERSION VERSION_GREATER_EQUAL 3.12 AND pybind11_VERSION VERSION_LESS 2.11)))
      message(WARNING "pybind11 ${pybind11_VERSION} is too old for Python ${Python3_VERSION} with numpy "
                      "${_qmpp_numpy_major}.x (pip install pybind11, or -DQMPP_WITH_PYTHON=OFF); the Python module is not built")
      set(pybind11_FOUND OFF)
    endif()
  endif()
  if(Python3_FOUND AND pybind11_FOUND)
    set(QMPP_HAVE_PYTHON ON)
  elseif(QMPP_WITH_PYTHON STREQUAL "ON")
    message(FATAL_ERROR "QMPP_WITH_PYTHON=ON but Python's headers or pybind11 were not found "
                        "(Debian: apt install python3-dev pybind11-dev)")
  endif()
endif()
if(QMPP_HAVE_PYTHON)
  # the static libraries go into the module, a shared object
  set(CMAKE_POSITION_INDEPENDENT_CODE ON)
endif()
