#!/bin/bash
# Measurements of the disk mechanism (issue 18), run as root where loop devices work (this
# machine, or a lab host: tests/lab/host.py gives every lab host loop devices), with DISK
# naming unitgen's libexec/disk as rendered (unitgen --root DIR add ... writes it to
# DIR/etc/wormhole/libexec/disk). Each prints "figure: value" lines; times are medians of
# RUNS runs. Usage: DISK=... bash measure.sh mkfs|mount|fsck|discard|grow|shrink
set -euo pipefail
RUNS=${RUNS:-5}
DIR=${DIR:-/var/lib/wormhole/measure}
DISK=${DISK:-/etc/wormhole/libexec/disk}
mkdir -p "$DIR"
cd "$DIR"

ms() { local s; s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
med() { printf '%s\n' "$@" | median; }
kib() { du -k "$1" | cut -f1; }
fresh() { rm -f "$1"; truncate --size "$2" "$1"; }
disk() { sh "$DISK" "$@"; }
start() { disk start "$1" "$2" "$3" "" ""; }  # IMAGE MOUNT SIZE, no volume of before disks
newdisk() { rm -f "$DIR/$1.img"; start "$DIR/$1.img" "$DIR/$1" "$2" 2>/dev/null; }
# A tree like a developer's home: small files of 1 byte to 20 KB in nested folders.
tree() {
  local top=$1 n=${2:-4000} i
  for ((i = 0; i < 50; i++)); do mkdir -p "$top/d$i"; done
  for ((i = 0; i < n; i++)); do
    head -c $(( (i * 7919) % 20000 + 1 )) /dev/urandom >"$top/d$((i % 50))/f$i"
  done
}

mkfs_figures() {
  local opts times r
  for opts in "-q" "-q -m 0 -E nodiscard" \
      "-q -m 0 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard" \
      "-q -m 0 -J size=16 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard" \
      "-q -b 4096 -i 16384 -m 0 -J size=16 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard"; do
    times=()
    for ((r = 0; r < RUNS; r++)); do
      fresh m.img 10G
      # shellcheck disable=SC2086
      times+=("$(ms mkfs.ext4 $opts m.img)")
    done
    echo "mkfs.ext4 of a 10G sparse file [$opts]: $(med "${times[@]}") ms, allocated on the host: $(kib m.img) KiB"
  done
  mkdir -p mnt
  mount -o loop m.img mnt
  echo "df -B1 of that fresh 10G disk (size used avail): $(df -B1 --output=size,used,avail mnt | tail -1)"
  sleep 90  # the kernel's lazy inode-table init runs in the background after mounting
  umount mnt
  echo "allocated 90 s after mounting ($(dumpe2fs m.img 2>/dev/null | grep -c ITABLE_ZEROED) of $(dumpe2fs m.img 2>/dev/null | grep -c '^Group') groups' inode tables zeroed): $(kib m.img) KiB"
  rm -rf m.img mnt
}

mount_figures() {
  fresh m.img 10G
  mkfs.ext4 -q -b 4096 -i 16384 -m 0 -J size=16 -E lazy_itable_init=1,lazy_journal_init=1,nodiscard m.img
  mkdir -p mnt
  local a=() b=() c=() d=() s=() t=() dev r
  for ((r = 0; r < RUNS; r++)); do
    a+=("$(ms mount -o loop,nodev,nosuid m.img mnt)"); b+=("$(ms umount mnt)")
    c+=("$(ms sh -c 'dev=$(losetup --find --show m.img) && mount "$dev" mnt')")
    umount mnt
    dev=$(losetup --associated m.img --output NAME --noheadings)
    d+=("$(ms losetup --detach "$dev")")
  done
  echo "mount -o loop: $(med "${a[@]}") ms; its umount: $(med "${b[@]}") ms, and the loop device is released (autoclear)"
  echo "losetup --find --show + mount: $(med "${c[@]}") ms; after umount the device stays attached until losetup --detach: $(med "${d[@]}") ms"
  for ((r = 0; r < RUNS; r++)); do
    s+=("$(ms start "$DIR/m.img" "$DIR/mnt" 10G)"); t+=("$(ms disk stop "$DIR/mnt")")
  done
  echo "disk start of an existing clean 10G image (e2fsck -p, dumpe2fs, mount, folders): $(med "${s[@]}") ms; disk stop: $(med "${t[@]}") ms"
  echo "loop devices still attached to the image: $(losetup --associated m.img | wc -l)"
  rm -rf m.img mnt
}

fsck_figures() {
  local p=() f=() r
  newdisk f 10G
  tree f/home/t 20000
  echo "tree: $(find f/home/t -type f | wc -l) files, $(du -sh f/home/t | cut -f1)"
  disk stop "$DIR/f"
  for ((r = 0; r < RUNS; r++)); do p+=("$(ms e2fsck -p f.img)"); f+=("$(ms e2fsck -f -p f.img)"); done
  echo "e2fsck -p of the clean 10G disk with 20000 files: $(med "${p[@]}") ms; e2fsck -f -p (forced, as before an offline grow): $(med "${f[@]}") ms"
  rm -rf f.img f
}

discard_figures() {
  # Does deleting give the host its space back? Without discard, only fstrim does.
  local option n
  for option in nodiscard discard; do
    newdisk d 2G
    umount d; mount -o loop,nodev,nosuid,$option d.img d
    head -c 500M /dev/zero >d/home/big; sync
    n=$(kib d.img)
    rm d/home/big; sync; sleep 6
    echo "[$option] allocated after writing 500 MiB: $n KiB; after deleting it: $(kib d.img) KiB"
    local start; start=$(date +%s%N); fstrim d; echo "[$option] fstrim: $(( ($(date +%s%N) - start) / 1000000 )) ms, then allocated: $(kib d.img) KiB"
    local times=() r
    for ((r = 0; r < RUNS; r++)); do
      tree d/home/t 5000; sync
      times+=("$(ms sh -c 'rm -rf d/home/t && sync')")
    done
    echo "[$option] rm -rf of 5000 small files and sync: $(med "${times[@]}") ms"
    umount d
  done
  rm -rf d.img d
}

grow_figures() {
  local r g=()
  for ((r = 0; r < RUNS; r++)); do
    newdisk g 10G
    tree g/home/t 4000
    find g/home/t -type f -exec sha256sum {} + | sort >sums.before
    disk stop "$DIR/g"
    g+=("$(ms start "$DIR/g.img" "$DIR/g" 20G)")
    (cd "$DIR" && sha256sum --quiet -c sums.before) || echo "FILES CHANGED"
    echo "after grow: $(df -h --output=size g | tail -1) $(find g/home/t -type f | wc -l) files, every checksum equal"
    disk stop "$DIR/g"
  done
  echo "offline grow 10G -> 20G with 4000 files (e2fsck -f -p, resize2fs, mount): $(med "${g[@]}") ms"
  newdisk g 10G
  echo "online grow (resize2fs on the mounted loop device): $(disk grow "$DIR/g.img" "$DIR/g" 20G 2>&1 | grep -E 'resize2fs:|disk:' | tr '\n' ' ')"
  disk stop "$DIR/g"
  rm -rf g.img g sums.before
}

shrink_figures() {
  newdisk s 10G
  head -c 1G /dev/urandom >s/home/big
  tree s/home/t 4000
  local used; used=$(df -B1 --output=used s | tail -1)
  disk stop "$DIR/s"
  e2fsck -f -p s.img >/dev/null
  local blocks; blocks=$(resize2fs -P s.img 2>/dev/null | sed -n 's/.*: //p')
  echo "df used: $used bytes; resize2fs -P minimum: $blocks blocks = $((blocks * 4096)) bytes"
  echo "shrink 10G -> 2G, below that minimum: $(resize2fs s.img 2G 2>&1 | grep -v '^$' | tail -1)"
  local start; start=$(date +%s%N)
  resize2fs s.img 3G >/dev/null 2>&1 && truncate --size 3G s.img
  echo "offline shrink 10G -> 3G (resize2fs, truncate): $(( ($(date +%s%N) - start) / 1000000 )) ms"
  echo "after the shrink: $(e2fsck -f -n s.img 2>&1 | tail -1)"
  rm -rf s.img s
}

"${1//-/_}_figures" "${@:2}"
