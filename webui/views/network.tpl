% rebase('layout', title='Network')
<h1>Network</h1>
% if state.get('error'):
<p class="field-error">Cannot read the network settings here: {{state['error']}}</p>
% end
% if pending:
<article id="pending">
<p><strong>Waiting for confirmation:</strong> {{pending['ifname']}} now has {{pending['address']}}.
Open <a id="confirm-link" href="{{pending['url']}}">{{pending['url']}}</a> within {{pending['seconds']}} s,
or the previous settings come back by themselves.</p>
</article>
% end
<h2>Interfaces</h2>
<div class="scroll">
<table id="interfaces">
<thead><tr><th>Interface</th><th>State</th><th class="opt">MAC</th><th>Addresses</th></tr></thead>
<tbody>
% for i in state['interfaces']:
<tr id="if-{{i['name']}}"><td>{{i['name']}}</td><td>{{'up' if i['up'] else 'down'}}</td><td class="opt">{{i['mac']}}</td>
<td>{{', '.join('%s/%s' % (a['address'], a['prefix']) for a in i['addresses']) or '-'}}</td></tr>
% end
</tbody>
</table>
</div>
<h2>Routes</h2>
<div class="scroll">
<table id="routes">
<thead><tr><th>Destination</th><th>Gateway</th><th>Interface</th></tr></thead>
<tbody>
% for r in state['routes']:
<tr><td>{{r['dst']}}</td><td>{{r['gateway'] or '-'}}</td><td>{{r['ifname']}}</td></tr>
% end
</tbody>
</table>
</div>
<h2>Set a static address</h2>
<p>The change takes effect at once. You then have {{'%g' % window}} seconds to confirm it from the new
address; if you cannot reach the box there, it goes back to what it had.</p>
<form method="post" action="/network" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<fieldset class="row">
% include('field', name='interface', label='Interface', value=form.get('interface', ''), error=errors.get('interface'), attrs='placeholder="eth0"')
% include('field', name='address', label='Address', value=form.get('address', ''), error=errors.get('address'), attrs='inputmode="decimal" placeholder="192.168.1.20"')
% include('field', name='prefix', label='Prefix length', value=form.get('prefix', '24'), error=errors.get('prefix'), attrs='inputmode="numeric"')
% include('field', name='gateway', label='Gateway (optional)', value=form.get('gateway', ''), error=errors.get('gateway'), attrs='inputmode="decimal" placeholder="192.168.1.1"')
</fieldset>
<button type="submit">Apply with roll-back</button>
</form>
% if saved:
<p class="muted">Saved for the next start: {{saved['interface']}} {{saved['address']}}{{' via ' + saved['gateway'] if saved.get('gateway') else ''}}</p>
% end
