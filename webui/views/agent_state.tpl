% if snap.get('box_error'):
<p class="form-error">The box does not answer: {{snap['box_error']}}</p>
% elif not queues:
<p class="agent-badge st-loggedout" id="agent-status">{{ext}} is not an agent of any queue</p>
% else:
%   states = {q['state'] for q in queues}
%   overall = call['state'] if call else ('paused' if 'paused' in states else 'wrap-up' if 'wrap-up' in states else 'idle' if 'idle' in states else 'logged out')
%   label = {'idle': 'available', 'ringing': 'ringing', 'on call': 'on a call', 'wrap-up': 'wrap-up', 'paused': 'paused', 'logged out': 'logged out'}[overall]
<p class="agent-badge st-{{overall.replace(' ', '').replace('-', '')}}" id="agent-status">{{ext}}: {{label}}{{' (' + pause_reason + ')' if overall == 'paused' and pause_reason else ''}}</p>
% if call:
<p class="agent-call" id="agent-call">{{'Ringing: ' if call['state'] == 'ringing' else 'On a call with '}}<strong>{{snap['contacts'].get(call['caller']) or call['caller'] or 'unknown caller'}}</strong> · {{call['queue_name']}}{{' · ' + clock(snap['at'] - call['since']) if call.get('since') else ''}}</p>
% end
<table id="agent-queues">
<thead><tr><th>Queue</th><th>You</th><th>Waiting</th></tr></thead>
<tbody>
% for q in queues:
<tr data-queue="{{q['queue']}}"><td>{{q['name']}} <span class="muted">{{q['number']}}</span></td><td class="agent-q-state">{{q['state']}}</td><td>{{q['waiting']}}</td></tr>
% end
</tbody>
</table>
% end
