#!/usr/bin/env bash
# Installs every package the project builds and tests with (Debian 12). CUDA 13 is expected at
# /usr/local/cuda (its cuRAND host library is required; nvcc is optional).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake ninja-build ccache \
  qt6-base-dev qt6-svg-dev libqcustomplot-dev \
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev \
  nlohmann-json3-dev libcli11-dev \
  xvfb xauth
if [ ! -e /usr/local/cuda/lib64/libcurand.so ] && [ ! -e /usr/local/cuda/targets/x86_64-linux/lib/libcurand.so ]; then
  echo "error: the CUDA toolkit (for cuRAND's host library) was not found at /usr/local/cuda" >&2
  exit 1
fi
