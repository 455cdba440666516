#!/bin/sh
# The seed's way of running the workspaces: one detached `docker run` with a restart
# policy per person, in a plain loop, and no systemd. The flags are those of
# wormhole@.service as far as they apply (no log directory: sshd logs to the engine).
# Reads "NAME PORT" lines on stdin; prints the name of each person whose run failed.
while read -r name port; do
  docker run --detach --restart=always --name "wormhole-$name" --hostname "$name" \
    --label "wormhole.user=$name" --pull never \
    --cgroup-parent wormhole.slice \
    --memory 512m --memory-swap 512m \
    --pids-limit 1024 \
    --publish "127.0.0.1:$port:22" \
    --read-only --tmpfs /tmp:exec,mode=1777 --tmpfs /var/tmp:exec,mode=1777 --tmpfs /run \
    --security-opt no-new-privileges \
    --cap-drop ALL --cap-add AUDIT_WRITE --cap-add CHOWN --cap-add FOWNER \
    --cap-add KILL --cap-add SETGID --cap-add SETUID --cap-add SYS_CHROOT \
    --mount "type=volume,src=wormhole-home-$name,dst=/home/user,volume-nocopy" \
    --mount "type=volume,src=wormhole-hostkeys-$name,dst=/etc/ssh/hostkeys" \
    --mount "type=bind,src=/var/lib/bench/people/keys/$name,dst=/etc/ssh/wormhole-keys,readonly" \
    wormhole:latest >/dev/null 2>&1 || echo "$name"
done
