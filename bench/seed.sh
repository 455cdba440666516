#!/bin/sh
# The seed's way of running the workspaces: one detached `docker run` with a restart
# policy per person and no systemd. The flags are those of wormhole@.service as far as
# they apply (no log directory: sshd logs to the engine).
# With NAME PORT as arguments it runs that one person; without, it reads "NAME PORT"
# lines on stdin and runs them one after another, the seed's loop. Prints the name of
# each person whose run failed. With NETWORK set, the containers join that network rather
# than the engine's default bridge (bench.profile uses it to show what a network of one's
# own costs a start).
start() {
  docker run --detach --restart=always --name "wormhole-$1" --hostname "$1" \
    --label "wormhole.user=$1" --pull never \
    --cgroup-parent wormhole.slice \
    --memory 512m --memory-swap 512m \
    --pids-limit 1024 \
    --publish "127.0.0.1:$2:22" ${NETWORK:+--network "$NETWORK"} \
    --read-only --tmpfs /tmp:exec,mode=1777 --tmpfs /var/tmp:exec,mode=1777 --tmpfs /run \
    --security-opt no-new-privileges \
    --cap-drop ALL --cap-add AUDIT_WRITE --cap-add CHOWN --cap-add FOWNER \
    --cap-add KILL --cap-add SETGID --cap-add SETUID --cap-add SYS_CHROOT \
    --mount "type=volume,src=wormhole-home-$1,dst=/home/user,volume-nocopy" \
    --mount "type=volume,src=wormhole-hostkeys-$1,dst=/etc/ssh/hostkeys" \
    --mount "type=bind,src=/var/lib/bench/people/keys/$1,dst=/etc/ssh/wormhole-keys,readonly" \
    wormhole:latest >/dev/null 2>&1 || echo "$1"
}
if [ $# -eq 2 ]; then
  start "$1" "$2"
  exit 0
fi
while read -r name port; do
  start "$name" "$port"
done
