#!/usr/bin/env bash
# Installs every package the project builds and tests with (Debian 12). The CUDA 13 toolkit at
# /usr/local/cuda is optional: with nvcc the kernels are built, without it the build is CPU only.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake ninja-build ccache \
  qt6-base-dev qt6-svg-dev libqcustomplot-dev \
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev \
  nlohmann-json3-dev libcli11-dev zlib1g-dev dataset-fashion-mnist \
  python3-dev python3-numpy python3-pytest pybind11-dev libdlpack-dev python3-torch \
  xvfb xauth
if [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "note: no CUDA toolkit at /usr/local/cuda: the build is CPU only (the studio, the CLI and" \
       "the tests all work; GPU results measured elsewhere open as they are)" >&2
fi
