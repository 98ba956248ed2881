# jq: paths, grouping, reduce, string interpolation, math.
{
  count: (.people | length),
  adults: [.people[] | select(.age >= 18) | .name],
  by_city: (.people | group_by(.city) | map({city: .[0].city, n: length})),
  total_age: (reduce .people[].age as $a (0; . + $a)),
  oldest: (.people | max_by(.age) | "\(.name) (\(.age))"),
  keys: ([paths(scalars)] | length),
  math: [(2 | pow(.; 10)), (10 | log10), ([3, 1, 2] | sort), (1.5 | floor), ("a,b,c" | split(","))],
  dates: (1700000000 | todate)
}
