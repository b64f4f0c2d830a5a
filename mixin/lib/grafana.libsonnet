// Grafana dashboard building blocks as plain jsonnet objects (no grafonnet: building the mixin
// needs nothing but `jsonnet`). Panels are laid out by `layout`: left to right in rows of 24
// columns, in the order given.
local ds = { type: 'prometheus', uid: '${datasource}' };

{
  datasource:: ds,

  // A Prometheus query. `instant` for stat/bar gauge values, `table` for table panels.
  target(expr, legend='', instant=false, table=false, ref=null)::
    {
      datasource: ds,
      expr: expr,
      legendFormat: if legend == '' then '__auto' else legend,
      refId: ref,
    }
    + (if instant || table then { instant: true, range: false } else { instant: false, range: true })
    + (if table then { format: 'table' } else {}),

  // steps([['green', null], ['red', 1]]) -> Grafana threshold steps.
  steps(pairs):: { mode: 'absolute', steps: [{ color: p[0], value: p[1] } for p in pairs] },

  // valueMap([['0', 'off', 'green'], ...]) -> Grafana value mappings.
  valueMap(entries):: [
    {
      type: 'value',
      options: {
        [entries[i][0]]: { text: entries[i][1], color: entries[i][2], index: i }
        for i in std.range(0, std.length(entries) - 1)
      },
    },
  ],

  panel(kind,
        title,
        description,
        targets,
        unit,
        w,
        h,
        thresholds=null,
        mappings=null,
        options=null,
        custom=null,
        overrides=null,
        transformations=null,
        min=null,
        max=null,
        decimals=null)::
    {
      type: kind,
      title: title,
      description: description,
      datasource: ds,
      gridPos: { w: w, h: h },
      fieldConfig: {
        defaults: { unit: unit, mappings: if mappings == null then [] else mappings }
                  + (if thresholds != null then { thresholds: thresholds, color: { mode: 'thresholds' } } else {})
                  + (if custom != null then { custom: custom } else {})
                  + (if min != null then { min: min } else {})
                  + (if max != null then { max: max } else {})
                  + (if decimals != null then { decimals: decimals } else {}),
        overrides: if overrides == null then [] else overrides,
      },
      options: if options == null then {} else options,
      // refIds A, B, ... for targets that have none
      targets: [
        targets[i] + (if targets[i].refId == null then { refId: std.char(65 + i) } else {})
        for i in std.range(0, std.length(targets) - 1)
      ],
    }
    + (if transformations != null && std.length(transformations) > 0 then { transformations: transformations } else {}),

  stat(title,
       description,
       targets,
       unit='short',
       thresholds=null,
       mappings=null,
       w=4,
       h=4,
       textMode='auto',
       overrides=null,
       decimals=null)::
    self.panel(
      'stat',
      title,
      description,
      targets,
      unit,
      w,
      h,
      thresholds=if thresholds == null then self.steps([['green', null]]) else thresholds,
      mappings=mappings,
      overrides=overrides,
      decimals=decimals,
      options={
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: if thresholds != null then 'background' else 'value',
        graphMode: 'none',
        textMode: textMode,
        justifyMode: 'auto',
        orientation: 'auto',
      },
    ),

  timeseries(title, description, targets, unit, w=12, h=8, stack=false, thresholdLine=null, overrides=null, min=null)::
    local p = self.panel(
      'timeseries',
      title,
      description,
      targets,
      unit,
      w,
      h,
      custom={
        drawStyle: 'line',
        lineWidth: 1,
        fillOpacity: if stack then 40 else 10,
        showPoints: 'never',
        spanNulls: false,
        stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
        thresholdsStyle: { mode: if thresholdLine != null then 'dashed' else 'off' },
      },
      thresholds=if thresholdLine != null then self.steps([['transparent', null], ['red', thresholdLine]]) else null,
      overrides=overrides,
      min=min,
      options={
        legend: { displayMode: 'table', placement: 'right', showLegend: true, calcs: ['lastNotNull'] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    );
    // one colour per series; thresholds only draw the dashed line
    p { fieldConfig+: { defaults+: { color: { mode: 'palette-classic' } } } },

  bargauge(title, description, targets, unit, thresholds, w=12, h=8, min=null, max=null)::
    self.panel(
      'bargauge',
      title,
      description,
      targets,
      unit,
      w,
      h,
      thresholds=thresholds,
      min=min,
      max=max,
      options={
        displayMode: 'gradient',
        orientation: 'horizontal',
        showUnfilled: true,
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      },
    ),

  // Columns every table hides: Prometheus' and the Operator's target labels. The cluster label is
  // shown: with several clusters selected it tells the rows apart (absent when there is none).
  hiddenColumns:: ['Time', '__name__', 'job', 'instance', 'namespace', 'pod', 'service', 'endpoint', 'container'],

  // `renames` is an array of [column, display name] (its order is the column order).
  table(title, description, targets, unit, renames, w=24, h=8, overrides=null, sortBy=null, hide=[])::
    local exclude = { [n]: true for n in self.hiddenColumns + hide };
    local order = { [renames[i][0]]: i for i in std.range(0, std.length(renames) - 1) };
    local p = self.panel(
      'table',
      title,
      description,
      targets,
      unit,
      w,
      h,
      overrides=overrides,
      transformations=(if std.length(targets) > 1 then [{ id: 'merge', options: {} }] else [])
                      + [{
                        id: 'organize',
                        options: { excludeByName: exclude, indexByName: order, renameByName: { [r[0]]: r[1] for r in renames } },
                      }],
      thresholds=self.steps([['green', null]]),
      options={
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], fields: '' },
        sortBy: if sortBy == null then [] else sortBy,
      },
    );
    p { fieldConfig+: { defaults+: { custom: { align: 'auto', cellOptions: { type: 'auto' }, filterable: true } } } },

  byName(name, props):: { matcher: { id: 'byName', options: name }, properties: props },
  byRef(ref, props):: { matcher: { id: 'byFrameRefID', options: ref }, properties: props },
  prop(id, value):: { id: id, value: value },

  // Assigns ids and x/y positions: panels flow left to right in rows of 24 columns.
  layout(panels)::
    std.foldl(
      function(acc, p)
        local w = p.gridPos.w, h = p.gridPos.h;
        local wrap = acc.x + w > 24;
        local x = if wrap then 0 else acc.x;
        local y = if wrap then acc.y + acc.rowH else acc.y;
        local rowH = if wrap then 0 else acc.rowH;
        {
          x: x + w,
          y: y,
          rowH: std.max(rowH, h),
          out: acc.out + [p { id: std.length(acc.out) + 1, gridPos: { h: h, w: w, x: x, y: y } }],
        },
      panels,
      { x: 0, y: 0, rowH: 0, out: [] }
    ).out,

  // Template variables.
  datasourceVariable():: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    includeAll: false,
    multi: false,
    options: [],
    refresh: 1,
    regex: '',
    skipUrlSync: false,
  },

  // A query variable. `qryType` is the Prometheus variable editor's query type (1: label values,
  // 3: query result).
  // With includeAll the variable starts at "All".
  queryVariable(name, label, query, qryType=1, includeAll=false, allValue=null, multi=false, regex='', sort=1):: {
    name: name,
    label: label,
    type: 'query',
    datasource: ds,
    definition: query,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: qryType },
    current:
      if !includeAll then {}
      else if multi then { selected: true, text: ['All'], value: ['$__all'] }
      else { selected: true, text: 'All', value: '$__all' },
    hide: 0,
    includeAll: includeAll,
    multi: multi,
    options: [],
    refresh: 2,
    regex: regex,
    skipUrlSync: false,
    sort: sort,
  } + (if allValue != null then { allValue: allValue } else {}),

  // For grafana.com: the data source asked for on import. Provisioning (the sidecar ConfigMap)
  // ignores both blocks; the panels always use the `datasource` variable.
  inputs:: [
    {
      name: 'DS_PROMETHEUS',
      label: 'Prometheus',
      description: 'Prometheus (or Thanos, Mimir, Amazon Managed Service for Prometheus) that scrapes eks-ipam-exporter',
      type: 'datasource',
      pluginId: 'prometheus',
      pluginName: 'Prometheus',
    },
  ],

  requires(panels, grafanaVersion='10.0.0')::
    local names = { bargauge: 'Bar gauge', stat: 'Stat', table: 'Table', timeseries: 'Time series' };
    [
      { type: 'grafana', id: 'grafana', name: 'Grafana', version: grafanaVersion },
      { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
    ] + [
      { type: 'panel', id: k, name: names[k], version: '' }
      for k in std.set([p.type for p in panels])
    ],

  dashboardLink(uid, title, keepVars):: {
    title: title,
    type: 'link',
    url: '/d/' + uid + '/' + uid,
    icon: 'dashboard',
    asDropdown: false,
    includeVars: keepVars,
    keepTime: true,
    tags: [],
    targetBlank: false,
    tooltip: '',
  },

  dashboard(config, uid, title, description, panels, variables, links)::
    local laid = self.layout(panels);
    {
      __inputs: $.inputs,
      __requires: $.requires(laid),
      annotations: {
        list: [{
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        }],
      },
      description: description,
      editable: true,
      fiscalYearStartMonth: 0,
      graphTooltip: 1,
      id: null,
      links: links,
      panels: laid,
      refresh: config.grafanaRefresh,
      schemaVersion: 39,
      tags: config.grafanaDashboardTags,
      templating: { list: variables },
      time: { from: 'now-6h', to: 'now' },
      timepicker: {},
      timezone: '',
      title: title,
      uid: uid,
      version: 1,
      weekStart: '',
    },
}
