% rebase('layout', title='Logs')
<link rel="stylesheet" href="/static/reports.css">
<h1>Logs</h1>
<form method="get" action="/system/logs" class="filter" id="log-filter">
<fieldset class="row">
<label for="q">Contains<input id="q" name="q" value="{{q}}" placeholder="login, ban, 1001..."></label>
<label for="source">Source
<select id="source" name="source">
% for value, label in (('', 'all'), ('audit', 'audit log (web)'), ('security', 'security events (box)'), ('box', 'box log')):
% if value != 'box' or log_file:
<option value="{{value}}"{{!' selected' if source == value else ''}}>{{label}}</option>
% end
% end
</select></label>
</fieldset>
<button type="submit">Filter</button>
</form>
% for p in problems:
<p class="warn">{{p}}</p>
% end
<p class="muted" id="log-count">{{total}} entr{{'y' if total == 1 else 'ies'}}{{', newest %d shown' % len(entries) if total > len(entries) else ''}}, newest first.
% if not log_file:
<code>linebox run</code> writes its own log to its standard error (kept by whatever started it), not to a file in its data directory; put one at <code>linebox.log</code> there and it shows here too.
% end
</p>
<div class="scroll">
<table id="log">
<thead><tr><th>When</th><th>Source</th><th>What</th></tr></thead>
<tbody>
% for e in entries:
<tr data-source="{{e['source']}}"><td>{{h.when(e['at'])}}</td><td>{{e['source']}}</td><td>{{e['text']}}</td></tr>
% end
% if not entries:
<tr><td colspan="3">Nothing matches.</td></tr>
% end
</tbody>
</table>
</div>
