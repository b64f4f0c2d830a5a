// One alerting rule in the shape every alert of the mixin shares: `for:` from
// _config.alertFor, a severity label, and summary / description / runbook_url annotations.
local u = import 'utils.libsonnet';

function(config, name, severity, expr, summary, description)
  local window = config.alertFor[name];
  {
    alert: name,
    expr: expr,
    'for': window,
    labels: { severity: severity },
    annotations: {
      summary: u.clusterScopedQueries(config, summary),
      // <<for>> in a description: the alert's window in words ("10 minutes").
      description: u.clusterScopedQueries(config, u.fill(u.fold(description), { 'for': u.humanDuration(window) })),
      runbook_url: config.runbookURLPattern % std.asciiLower(name),
    },
  }
