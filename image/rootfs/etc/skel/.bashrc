# ~/.bashrc of a wormhole workspace: read by interactive bash shells.
case $- in *i*) ;; *) return ;; esac

HISTCONTROL=ignoredups:erasedups
HISTSIZE=10000
HISTFILESIZE=100000
shopt -s histappend checkwinsize globstar

export EDITOR=vi VISUAL=vi PAGER=less LESS=-FRX

[ -r /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion

# The prompt names the git branch and marks a dirty tree (* unstaged, + staged).
if [ -r /usr/lib/git-core/git-sh-prompt ]; then
  . /usr/lib/git-core/git-sh-prompt
  GIT_PS1_SHOWDIRTYSTATE=1
  GIT_PS1_SHOWUNTRACKEDFILES=1
  GIT_PS1_SHOWUPSTREAM=auto
  PS1='\u@\h:\w$(__git_ps1 " (%s)")\$ '
else
  PS1='\u@\h:\w\$ '
fi

alias ll='ls -alF' gs='git status -sb' gl='git log --oneline --graph --decorate -20'

[ -r ~/.bashrc.local ] && . ~/.bashrc.local
