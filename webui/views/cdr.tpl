% rebase('layout', title='Call records')
<link rel="stylesheet" href="/static/reports.css">
<h1>Call records</h1>
<form method="get" action="/cdr" novalidate id="cdr-filter" class="filter">
<fieldset class="row">
% include('field', name='from', label='From (day)', type='date', value=form.get('from', ''), error=errors.get('from'))
% include('field', name='to', label='To (day, included)', type='date', value=form.get('to', ''), error=errors.get('to'))
% include('field', name='caller', label='Caller', value=form.get('caller', ''), error=errors.get('caller'), attrs='placeholder="1001"')
% include('field', name='callee', label='Callee', value=form.get('callee', ''), error=errors.get('callee'), attrs='placeholder="1002"')
<label for="disposition">Disposition
<select id="disposition" name="disposition"{{!' aria-invalid="true"' if errors.get('disposition') else ''}}>
<option value="">any</option>
% for d in dispositions:
<option value="{{d}}"{{!' selected' if form.get('disposition') == d else ''}}>{{d}}</option>
% end
</select>
% if errors.get('disposition'):
<small class="field-error">{{errors['disposition']}}</small>
% end
</label>
</fieldset>
<div class="buttons"><button type="submit">Search</button>
<a id="cdr-csv" role="button" class="secondary" href="/cdr.csv{{'?' + query if query else ''}}" download>Export CSV</a></div>
</form>
<p id="cdr-count" class="muted">{{total}} call{{'' if total == 1 else 's'}}{{' (page %d of %d)' % (page, pages) if pages > 1 else ''}}; times are the box's local time.</p>
<div class="scroll">
<table id="cdr">
<thead><tr><th>Start</th><th>Caller</th><th>Callee</th><th class="opt">Disposition</th><th class="opt">Duration</th><th class="opt">Talk</th><th>Recording</th></tr></thead>
<tbody>
% for r in rows:
<tr data-cdr="{{r['id']}}"><td>{{when(r['start'])}}</td><td>{{r['caller']}}</td><td>{{r['callee']}}</td><td class="opt">{{r['disposition']}}</td>
<td class="opt">{{h.duration(r['duration']) if r.get('duration') is not None else '-'}}</td>
<td class="opt">{{h.duration(r['billsec']) if r.get('billsec') is not None else '-'}}</td>
<td class="rec">
% if r.get('playable'):
<audio controls preload="none" src="/cdr/{{r['id']}}/recording"></audio>
<a href="/cdr/{{r['id']}}/recording?download=1" download>download</a>
% elif r.get('recording'):
<span class="muted" title="{{r['recording']}}">removed</span>
% else:
<span class="muted">-</span>
% end
</td></tr>
% end
% if not rows:
<tr><td colspan="7">{{'Fix the search above.' if errors else 'No calls match.'}}</td></tr>
% end
</tbody>
</table>
</div>
% if pages > 1:
<nav aria-label="pages" class="pager"><ul>
% if page > 1:
<li><a href="/cdr?{{query + '&' if query else ''}}page={{page - 1}}" rel="prev">← newer</a></li>
% end
<li>page {{page}} of {{pages}}</li>
% if page < pages:
<li><a href="/cdr?{{query + '&' if query else ''}}page={{page + 1}}" rel="next">older →</a></li>
% end
</ul></nav>
% end
