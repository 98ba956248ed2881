# gawk: fields, associative arrays, printf, regex functions, sorting, time.
BEGIN { FS = ":" }
{ shells[$NF]++; uid_sum += $3; names[NR] = $1 }
length($1) > maxlen { maxlen = length($1); longest = $1 }
END {
    n = asorti(shells, keys)
    for (i = 1; i <= n; i++) printf "%-20s %d\n", keys[i], shells[keys[i]]
    print "records", NR, "uid sum", uid_sum, "longest", longest
    s = "The rain in Spain stays mainly in the plain"
    print gsub(/ain/, "AIN", s), s
    split("a,b;c d", parts, /[,; ]/)
    print length(parts), parts[3]
    print toupper(substr("riscv64", 1, 5)), index("hello", "ll"), match("foobar", /o+b/), RSTART, RLENGTH
    printf "%.10f %e %d %x %c\n", atan2(0, -1), exp(10), 2^40, 48879, 65
    print strftime("%Y-%m-%d %H:%M:%S", 1700000000, 1)
    print sprintf("%5.2f|%-6s|%03d", 3.14159, "ab", 7)
    srand(7); x = rand(); print (x >= 0 && x < 1)
    print gensub(/([a-z]+)-([0-9]+)/, "\\2=\\1", "g", "abc-12 de-345")
}
