# ~/.profile: login shells read this; bash's login shell then reads ~/.bashrc.
[ -n "$BASH_VERSION" ] && [ -r "$HOME/.bashrc" ] && . "$HOME/.bashrc"
