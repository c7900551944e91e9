% rebase('layout', title='Queues')
<link rel="stylesheet" href="{{css}}">
<h1>Queues</h1>
% if errors.get('queues'):
<p class="form-error" id="queues-error">{{errors['queues']}}</p>
% end
<div class="scroll">
<table id="queue-list">
<thead><tr><th>Queue</th><th>Number</th><th class="opt">Strategy</th><th>Agents</th><th>Now</th><th></th></tr></thead>
<tbody>
% for q in queues:
% now = live.get(q['id'])
<tr id="queue-{{q['id']}}"><td><a href="/queues/{{q['id']}}">{{q['id']}}</a>{{' · ' + q['name'] if q['name'] else ''}}</td>
<td>{{q['number']}}</td><td class="opt">{{q['strategy']}}</td>
<td>{{', '.join(a['agent'] for a in q['members'])}}{{' + ' if q['members'] and q['agents'] else ''}}{{', '.join(a['agent'] + '*' for a in q['agents'])}}</td>
<td>
% if now:
{{len(now['waiting'])}} waiting · {{sum(1 for s in now['agents'].values() if s != 'logged out')}} agent(s) in
% else:
<span class="muted">not live</span>
% end
</td>
<td class="actions"><a href="/queues/{{q['id']}}" role="button" class="secondary small">Edit</a>
<form method="post" action="/queues/{{q['id']}}/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Remove</button></form></td></tr>
% end
% if not queues:
<tr><td colspan="6">No queues yet.</td></tr>
% end
</tbody>
</table>
</div>
<p class="muted">* a dynamic agent: logs in and out from the desk phone.</p>
<p><a href="/queues/new" role="button" id="new-queue">New queue</a></p>
