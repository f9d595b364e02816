#!/usr/bin/env bash
# Builds the Debian package OUT/latch_<version>_<arch>.deb from the programs in BUILD (make deb:
# both build/): latchd and latch in /usr/bin, their man pages, the systemd unit, README, docs
# and examples in /usr/share/doc/latch, and the maintainer scripts of dist/debian/ (the user
# `latch`, /var/lib/latch). Needs dpkg-deb; dpkg-shlibdeps (dpkg-dev) names the libraries'
# packages when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-$build}
version=$(sed -n 's/^#define LATCH_VERSION "\(.*\)"$/\1/p' src/core/version.h)
arch=$(dpkg --print-architecture)
for b in latchd latch; do
  [[ -x $build/$b ]] || { echo "deb: $build/$b is missing: run make first" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/latch-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# the files, as make install lays them out for PREFIX=/usr (the unit where Debian's units are)
make --no-print-directory -s install-files BUILD="$build" DESTDIR="$root" PREFIX=/usr \
  UNITDIR=/lib/systemd/system >/dev/null
strip --strip-unneeded "$root/usr/bin/latchd" "$root/usr/bin/latch" 2>/dev/null || true
gzip -9n "$root"/usr/share/man/man*/*.[0-9]
find "$root" -type d -exec chmod 0755 {} +

# Depends: the packages of the libraries the programs link
depends="libc6, libssl3, libsodium23, libjansson4, libyaml-0-2, libcurl4, libhiredis0.14"
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$work/src/debian"
  printf 'Source: latch\n\nPackage: latch\nArchitecture: any\n' > "$work/src/debian/control"
  found=$(cd "$work/src" && dpkg-shlibdeps -O "-e$root/usr/bin/latchd" "-e$root/usr/bin/latch" 2>/dev/null \
          | sed -n 's/^shlibs:Depends=//p')
  [[ -n $found ]] && depends=$found
fi

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
  dist/debian/control.in > "$root/DEBIAN/control"
install -m 0755 dist/debian/postinst dist/debian/prerm dist/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/latch_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
