#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and builds tests/consumer
# against it with find_package(balm) and with pkg-config; runs all three.
set -euo pipefail
build=$1; src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*/pkgconfig | head -1 | xargs dirname)
cmake -S "$src" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/b/consumer_shared"
"$work/b/consumer_static"
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -std=c11 "$src/consumer.c" -o "$work/pc" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs balm)
LD_LIBRARY_PATH="$libdir" "$work/pc"
test -x "$work/prefix/bin/balm" || { echo "balm command not installed"; exit 1; }
echo "install consumer: find_package shared, static and pkg-config all OK"
