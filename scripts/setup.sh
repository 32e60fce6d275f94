#!/usr/bin/env bash
# Installs the Debian packages alkaid needs (only the missing ones) and builds it into build/.
# Works on a fresh Debian 12 machine as root, or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
    gcc libc6-dev pkg-config meson ninja-build make   # build (make: the out-of-tree plugin example)
    libjansson-dev zlib1g-dev                         # ALIR JSON, gzip
    libcriterion-dev                                  # unit tests
    python3 python3-numpy                             # test oracles (Debian's /usr/bin/python3)
    clang-format                                      # style check in the test command
    libuv1-dev libnng-dev cmake                       # alkaidd: loop; sockets (nng: CMake package)
    libmsgpack-dev libsystemd-dev                     # the wire format; sd_notify
    python3-msgpack                                   # Python client and daemon tests
    python3-torch                                     # the torch exporter and its tests
    systemd                                           # systemd-analyze verify in the tests
    clang libclang-rt-dev                             # the libFuzzer harnesses
    libzip-dev libhdf5-dev                            # Keras model files: .keras zips, HDF5 weights
    python3-h5py                                      # the Keras file generator of the tests
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
ninja -C build >/dev/null
echo "setup: built build/client/alkaidc"
