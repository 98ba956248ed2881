# Processes from bash (run as `bash -s` with this on stdin): pipelines, subshells, command
# substitution, background jobs, kill, traps, exit codes, here-documents, xargs, find -exec,
# coproc, timeout. The output does not depend on timing: jobs write to files read after
# `wait`, parallel output is sorted.
set -u
tmp=$(mktemp -d)
cd "$tmp" || exit 1

echo "== pipelines"
printf 'b\na\nc\n' | sort | tr a-z A-Z | head -2
echo hello | cat | cat | cat | wc -c
seq 1 1000 | grep 7 | wc -l
seq 1 100000 | tail -n 2
yes | head -n 100000 | wc -l

echo "== subshells"
x=1
(x=2; echo "in the subshell x=$x")
echo "after it x=$x"
(exit 3); echo "subshell exit status $?"
{ echo grouped; echo commands; } | tac
( cd /usr/lib; pwd ); [ "$PWD" = "$tmp" ] && echo "cwd unchanged by the subshell's cd"
[ "$BASHPID" = "$$" ] && echo "BASHPID is \$\$ at the top"
( [ "$BASHPID" != "$$" ] && echo "a subshell has its own BASHPID, same \$\$" )

echo "== command substitution"
n=$(seq 5 | wc -l); echo "n=$n"
echo "$(echo $(echo $(echo nested three deep)))"
echo "trailing newlines stripped: [$(printf 'a\nb\n\n\n')]"
echo "status inside: $(false; echo $?)"
v=$(exit 4); echo "status of an assignment from \$(exit 4): $?"
echo "big: $(seq 1 20000 | wc -c)"
echo "backquotes: `echo old style`"

echo "== background jobs and wait"
sleep 0.2 & p1=$!
( sleep 0.1; exit 6 ) & p2=$!
wait $p2; echo "job 2 status $?"
wait $p1; echo "job 1 status $?"
for i in 1 2 3 4; do ( echo "job $i" > out.$i; exit $i ) & done
wait; echo "wait for all: $?"
cat out.1 out.2 out.3 out.4
wait; echo "wait without jobs: $?"
( exit 7 ) & p=$!; wait -n $p; echo "wait -n: $?"
wait 12345 2>/dev/null; echo "wait for a stranger: $?"

echo "== kill"
# (bash reports jobs killed by most signals on stderr with their pid: inner shells whose
# stderr is dropped run those.)
sleep 10 & p=$!; kill $p; wait $p; echo "kill (TERM) a sleep: $?"
bash -c 'sleep 10 & p=$!; kill -KILL $p; wait $p; echo "kill -KILL: $?"' 2>/dev/null
# An asynchronous command ignores SIGINT (job control is off); given time to start, so that
# it is not a race between the shell's kill and the child's start-up.
sleep 0.3 & p=$!; sleep 0.1; kill -s INT $p; wait $p; echo "kill -s INT of an async command: $?"
kill -0 $$ && echo "kill -0 \$\$ works"
kill -TERM 999999 2>/dev/null; echo "kill of no such process: $?"
kill -l 15 9; kill -l TERM

echo "== traps"
trap 'echo "trap: USR1"' USR1
kill -USR1 $$; echo "after USR1"
trap 'echo "trap: INT"' INT
kill -INT $$; echo "after INT"
trap - INT USR1
( trap 'echo "trap: subshell EXIT"' EXIT; echo "in a subshell with an EXIT trap" )
bash -c 'trap "echo trap: EXIT \$?" EXIT; exit 9'; echo "status $?"
bash -c 'kill -TERM $$; echo not reached'; echo "bash killed itself with TERM: $?"
bash -c 'trap "echo trap: TERM; exit 12" TERM; kill -TERM $$; echo not reached'; echo "status $?"
bash -c 'trap "echo trap: USR1 while a child runs" USR1; (sleep 0.2; kill -USR1 $$) & sleep 0.5; wait; echo done'
bash -c 'trap "" INT; kill -INT $$; echo "INT ignored"'; echo "status $?"
bash -c 'trap "" TERM; bash -c "kill -TERM \$\$; echo ignored TERM inherited"'; echo "status $?"

echo "== exit codes"
false; echo "false: $?"
true | false; echo "true | false: $?"
false | true; echo "false | true: $?"
set -o pipefail; false | true; echo "pipefail: $?"; set +o pipefail
(exit 3) | (exit 4) | (exit 0); echo "PIPESTATUS: ${PIPESTATUS[*]}"
! false; echo "! false: $?"
nosuchcommand 2>/dev/null; echo "command not found: $?"
/etc/passwd 2>/dev/null; echo "not executable: $?"
bash -c 'exit 300'; echo "exit 300: $?"
bash -c 'exit -1'; echo "exit -1: $?"
bash -c 'set -e; false; echo not reached'; echo "set -e: $?"
bash -c 'python3 -c "import os; os.kill(os.getpid(), 11)"; echo "python killed by SIGSEGV: $?"' 2>/dev/null

echo "== here-documents"
cat <<EOF
expanded: $((6 * 7)) $(echo substituted)
EOF
cat <<'EOF'
not expanded: $HOME $(echo x)
EOF
tr a-z A-Z <<<"here string"
while read -r a b; do echo "[$b:$a]"; done <<EOF
1 one
2 two
EOF
cat <<-EOF | wc -l
	tab-stripped
	lines
EOF

echo "== redirections"
echo out >f.txt; echo more >>f.txt; cat f.txt
ls /nonexistent 2>&1 >/dev/null | wc -l
exec 3>fd3.txt; echo "via fd 3" >&3; exec 3>&-; cat fd3.txt
{ echo stdout; echo stderr >&2; } 2>&1 | sort
cat < <(echo "process substitution")
paste <(seq 3) <(seq 4 6)

echo "== xargs"
seq 1 9 | xargs -n 3 echo
printf '%s\0' a 'b c' d | xargs -0 -n1 echo
seq 1 8 | xargs -P2 -I{} bash -c 'echo "item {} from a child"' | sort -V
seq 1 4 | xargs -P2 -n1 bash -c 'exit $(( $1 == 3 ? 7 : 0 ))' _; echo "xargs with a failing command: $?"
echo /usr/lib/python3.13/json/*.py | xargs -n2 | wc -l

echo "== find -exec"
find /usr/lib/python3.13/json -name '*.py' -exec basename {} \; | sort
find /usr/lib/python3.13/json -name '*.py' -exec wc -l {} + | sort -k2
find /usr/lib/python3.13/json -maxdepth 1 -name 'de*.py' -execdir echo found {} \;
find /usr/lib/python3.13/json -name 'tool.py' -exec false {} \; -o -print | wc -l

echo "== coproc"
coproc tr a-z A-Z
echo "through a coprocess" >&"${COPROC[1]}"
exec {COPROC[1]}>&-
read -r line <&"${COPROC[0]}"; echo "$line"
wait

echo "== read loops and exec"
seq 3 | while read -r n; do echo "n=$n"; done
bash -c 'exec echo "exec replaced the shell"; echo not reached'
env -i FOO=bar bash -c 'echo "env -i: $FOO ${HOME-unset}"'

echo "== timeout"
timeout 0.2 sleep 5; echo "timeout: $?"
bash -c 'timeout -s KILL 0.2 sleep 5; echo "timeout -s KILL: $?"' 2>/dev/null
timeout 5 true; echo "timeout, command done first: $?"

echo "== many processes"
for i in $(seq 50); do /bin/true; done; echo "50 x /bin/true"
s=0; for i in $(seq 20); do s=$((s + $(echo $i))); done; echo "sum of 20 command substitutions: $s"

cd /
rm -rf "$tmp"
echo "== end"
