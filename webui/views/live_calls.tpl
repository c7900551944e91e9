% if live['box_error']:
<tr><td colspan="6" class="form-error">The box does not answer: {{live['box_error']}}</td></tr>
% elif not live['calls']:
<tr><td colspan="6" class="muted">No calls in progress.</td></tr>
% end
% for c in live['calls']:
<tr data-call="{{c['id']}}"><td>{{c['caller']}}</td><td>{{c['callee']}}</td><td>{{c['state']}}{{' (on hold)' if c.get('on_hold') else ''}}</td><td>{{h.duration(c.get('seconds') or 0)}}</td><td class="opt">{{' / '.join(c.get('codecs') or [])}}</td>
<td><form method="post" action="/calls/{{c['id']}}/hangup" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Hang up</button></form></td></tr>
% end
