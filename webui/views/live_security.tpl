% if not live['events']:
<tr><td colspan="4" class="muted">None.</td></tr>
% end
% for e in live['events']:
<tr><td>{{h.when(e['time'])}}</td><td>{{e['event']}}{{' (' + e['method'] + ')' if e.get('method') else ''}}{{': ' + e['reason'] if e['event'].startswith('overload') and e.get('reason') else ''}}</td><td>{{e['source']}}</td><td class="opt">{{e.get('user') or ''}}</td></tr>
% end
