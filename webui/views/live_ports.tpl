% ports = live.get('ports') or []
% for p in ports:
<tr id="port-{{p['port']}}"><td>{{p['port']}}</td><td>{{p['kind'].upper()}}</td>
<td>{{('extension ' + p['number']) if p.get('number') else ('calls to ' + p['inbound']) if p.get('inbound') else 'not used'}}</td>
<td>{{'in a call' if p.get('in_call') else p.get('state', '?')}}</td></tr>
% end
% if not ports:
<tr><td colspan="4">No analog ports.</td></tr>
% end
