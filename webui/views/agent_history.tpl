<table class="agent-history">
<thead><tr><th>When</th><th>Call</th><th class="opt">Talk</th><th>Agent's note</th></tr></thead>
<tbody>
% for r in rows:
<tr data-call="{{r['id']}}"{{!' class="this-call"' if get('this_call') == r['id'] else ''}}><td class="when">{{short_when(r['start'])}}</td>
<td>{{('in' if r['inbound'] else 'out') + (' · ' + r['other'] if r['other'] else '')}}{{' · this call' if get('this_call') == r['id'] else (' · ' + r['disposition'].lower() if r['disposition'] else '')}}</td>
<td class="opt">{{h.duration(r['billsec']) if r['billsec'] else ''}}</td>
<td>
% if r['note']:
<strong class="disposition">{{r['note'].disposition}}</strong>{{' – ' + r['note'].note if r['note'].note else ''}} <span class="muted">({{r['note'].agent}})</span>
% end
</td></tr>
% end
% if not rows:
<tr><td colspan="4" class="muted">No previous calls.</td></tr>
% end
</tbody>
</table>
