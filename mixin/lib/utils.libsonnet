// Small string helpers shared by the rules and the dashboards. Plain jsonnet, no dependencies.
{
  // YAML's folded block scalar (`>-`): the lines of a text block joined by single spaces, no
  // trailing newline. Lets long annotations be written over several lines.
  fold(text)::
    std.join(' ', std.filter(function(l) l != '', std.split(text, '\n'))),

  // Replaces every <<name>> in `text` by vars[name]. For text that also holds `%` (Go templates'
  // printf), where jsonnet's % formatting would need every literal % doubled.
  fill(text, vars)::
    std.foldl(function(acc, k) std.strReplace(acc, '<<' + k + '>>', std.toString(vars[k])), std.objectFields(vars), text),

  // '10m' -> '10 minutes', '1h' -> '1 hour'; anything else as given.
  humanDuration(d)::
    local units = { s: 'second', m: 'minute', h: 'hour' };
    local unit = std.substr(d, std.length(d) - 1, 1);
    local n = std.substr(d, 0, std.length(d) - 1);
    local isInt = std.length(n) > 0 && std.length([c for c in std.stringChars(n) if !std.member('0123456789', c)]) == 0;
    if isInt && std.objectHas(units, unit) then
      n + ' ' + units[unit] + (if n == '1' then '' else 's')
    else d,

  // '1200' -> '20' when it is a whole number of minutes (for descriptions), else the seconds.
  minutes(seconds)::
    if seconds % 60 == 0 then std.toString(seconds / 60) else std.toString(seconds / 60.0),

  // A fraction for PromQL: two decimals when that is exact (0.10, 0.15), else the shortest form.
  ratio(x)::
    local two = std.format('%.2f', x);
    if std.abs(x * 100 - std.floor(x * 100 + 0.5)) < 1e-9 then two else std.format('%g', x),

  // A fraction as a percentage for descriptions: 0.1 -> '10%'.
  percent(x)::
    std.toString(std.floor(x * 1000 + 0.5) / 10) + '%',

  // `on (<cluster label>, labels...)`: joins never match series of two clusters.
  on(config, labels)::
    'on (' + std.join(', ', [config.clusterLabel] + labels) + ')',

  // The alert annotations query Prometheus through Go templates, always written as
  //   printf "metric{job=%q,...}" $labels.job ...
  // This puts the alert's own cluster label in front of every such query, so that with several
  // clusters in one Prometheus the annotation shows the numbers of the right cluster. Series
  // without the label match `cluster=""`, so a single-cluster Prometheus sees no difference.
  clusterScopedQueries(config, text)::
    local cl = config.clusterLabel;
    std.strReplace(
      std.strReplace(text, '{job=%q', '{' + cl + '=%q,job=%q'),
      '" $labels.job',
      '" $labels.' + cl + ' $labels.job'
    ),
}
