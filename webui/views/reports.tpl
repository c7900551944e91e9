% rebase('layout', title='Reports')
<link rel="stylesheet" href="/static/vendor/uplot-1.6.32.min.css">
<link rel="stylesheet" href="/static/reports.css">
<script src="/static/vendor/uplot-1.6.32.iife.min.js" defer></script>
<script src="/static/reports.js" defer></script>
<h1>Reports</h1>
<form method="get" action="/reports" novalidate id="report-window" class="filter">
<fieldset class="row">
% include('field', name='from', label='From (day, UTC)', type='date', value=form.get('from', ''), error=errors.get('from'))
% include('field', name='to', label='To (day, UTC, included)', type='date', value=form.get('to', ''), error=errors.get('to'))
<label for="period">Per
<select id="period" name="period"{{!' aria-invalid="true"' if errors.get('period') else ''}}>
% for p in periods:
<option value="{{p}}"{{!' selected' if form.get('period') == p else ''}}>{{p}}</option>
% end
</select>
% if errors.get('period'):
<small class="field-error">{{errors['period']}}</small>
% end
</label>
<label for="queue">Queue
<select id="queue" name="queue">
<option value="">all queues</option>
% for q in queues:
<option value="{{q}}"{{!' selected' if form.get('queue') == q else ''}}>{{q}}</option>
% end
</select>
</label>
<label for="agent">Agent
<select id="agent" name="agent">
<option value="">all agents</option>
% for a in sorted(set(agents) | ({form['agent']} if form.get('agent') else set())):
<option value="{{a}}"{{!' selected' if form.get('agent') == a else ''}}>{{a}}</option>
% end
</select>
</label>
</fieldset>
<button type="submit">Show</button>
</form>
<script type="application/json" id="report-data">{{!chart_json}}</script>
% if not errors and not report['queues']:
<p id="report-empty" class="muted">No queue calls in this window.</p>
% end
<div id="charts" class="charts"></div>
<h2>Queues</h2>
<div class="scroll">
<table id="queue-figures" class="figures">
<thead><tr><th>Queue</th><th>{{form.get('period', 'hour').capitalize()}} (UTC)</th><th>Offered</th><th>Answered</th><th>Abandoned</th>
<th>Service level</th><th class="opt">Abandoned %</th><th>AHT</th><th class="opt">ASA</th><th class="opt">Longest wait</th></tr></thead>
<tbody>
% for r in report['queues']:
<tr data-queue="{{r['queue']}}" data-period="{{r['period_start'] or ''}}"><td>{{r['queue']}}</td><td>{{(r['period_start'] or '').replace('T', ' ').replace(':00:00Z', ':00').replace(' 00:00', '')}}</td>
<td class="num" data-k="offered">{{r['offered']}}</td><td class="num" data-k="answered">{{r['answered']}}</td><td class="num" data-k="abandoned">{{r['abandoned']}}</td>
<td class="num" data-k="service_level_pct">{{'-' if r['service_level_pct'] is None else '%.1f%%' % r['service_level_pct']}} <small class="muted">≤{{'%g' % r['service_level_seconds']}} s</small></td>
<td class="num opt" data-k="abandon_pct">{{'-' if abandon_pct(r) is None else '%.1f%%' % abandon_pct(r)}}</td>
<td class="num" data-k="aht">{{'-' if r['aht'] is None else h.duration(r['aht'])}}</td>
<td class="num opt" data-k="asa">{{'-' if r['asa'] is None else h.duration(r['asa'])}}</td>
<td class="num opt" data-k="longest_wait">{{'-' if r['longest_wait'] is None else h.duration(r['longest_wait'])}}</td></tr>
% end
% if not report['queues']:
<tr><td colspan="10">{{'Fix the window above.' if errors else 'Nothing in this window.'}}</td></tr>
% end
</tbody>
</table>
</div>
<h2>Agents</h2>
<div class="scroll">
<table id="agent-figures" class="figures">
<thead><tr><th>Queue</th><th>Agent</th><th>{{form.get('period', 'hour').capitalize()}} (UTC)</th><th>Answered</th><th>Missed</th><th>Talk</th><th class="opt">Wrap-up</th><th class="opt">Idle</th><th class="opt">Paused</th></tr></thead>
<tbody>
% for r in report['agents'] or []:
<tr data-agent="{{r['agent']}}" data-period="{{r['period_start'] or ''}}"><td>{{r['queue']}}</td><td>{{r['agent']}}</td><td>{{(r['period_start'] or '').replace('T', ' ').replace(':00:00Z', ':00').replace(' 00:00', '')}}</td>
<td class="num" data-k="answered">{{r['answered']}}</td><td class="num" data-k="missed">{{r['missed']}}</td><td class="num" data-k="talk">{{h.duration(r['talk'])}}</td>
<td class="num opt">{{h.duration(r['wrapup'])}}</td><td class="num opt">{{h.duration(r['idle'])}}</td><td class="num opt">{{h.duration(r['pause_total'])}}</td></tr>
% end
% if not report['agents']:
<tr><td colspan="9">No agent activity in this window.</td></tr>
% end
</tbody>
</table>
</div>
<p class="muted">Service level: calls answered within the queue's target as a share of calls offered. AHT: average handle time, talk plus wrap-up. ASA: average speed of answer. Figures as <code>linebox queue stats</code> computes them from the queue log.</p>
