# make -j2 on a small makefile (run as `bash -c "$(cat make.bash)"`): parallel recipes run
# by /bin/sh, the jobserver, a recursive make, failures and -k. Recipes write files; what is
# printed does not depend on which job finishes first.
set -u
tmp=$(mktemp -d)
cd "$tmp" || exit 1
mkdir sub
cat >Makefile <<'EOF'
parts := a b c d e f
all: out.txt sum.txt sub
out.txt: $(addsuffix .part,$(parts))
	@cat $^ > $@
	@echo "out.txt from $(words $^) parts"
%.part:
	@sleep 0.1
	@echo "part $* by $$(basename $(SHELL))" > $@
sum.txt: out.txt
	@n=0; for w in $$(cut -d' ' -f2 out.txt); do n=$$((n + 1)); done; echo "$$n" > $@
sub:
	@$(MAKE) -s -C sub
fail1:
	@exit 3
fail2: ok.part
	@false
ok.part:
	@echo ok > $@
.PHONY: all sub fail1 fail2
EOF
cat >sub/Makefile <<'EOF'
all: x y
x y:
	@echo "sub $@" > $@.txt
	@echo "recursive make built $@"
EOF
# The two sub-make lines come in either order.
make -j2 2>&1 | sort
echo "make -j2: ${PIPESTATUS[0]}"
cat out.txt sum.txt
make -j2 out.txt; echo "again: $?"
touch a.part
make -j2 -s out.txt; echo "after touching a prerequisite: $?"
make -j2 fail1; echo "failing recipe: $?"
make -j2 -k fail1 fail2 2>&1 | sort; echo "-k with two failures: ${PIPESTATUS[0]}"
make nosuchtarget; echo "no rule: $?"
make -j2 -n out.txt; echo "-n: $?"
cd /
rm -rf "$tmp"
