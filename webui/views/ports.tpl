% rebase('layout', title='Analog ports')
<link rel="stylesheet" href="{{css}}">
<h1>Analog ports</h1>
<p>An <strong>FXS</strong> port feeds an analog phone: it is an extension and rings with that extension's SIP phones. An <strong>FXO</strong> port is a phone line from the exchange: its calls go to an extension, IVR or queue number.</p>
% if down:
<p class="warn" id="ports-down">{{down}}</p>
% end
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
% if not rows:
<p id="no-ports">This box has no analog ports (setting <code>analog.driver</code> is {{driver or '?'}}; <code>sim</code> gives a simulated board, <code>dahdi</code> real cards; read at start).</p>
% else:
<form method="post" action="/ports" novalidate id="ports-form" class="config">
<input type="hidden" name="csrf" value="{{csrf}}">
<div class="scroll">
<table id="port-list">
<thead><tr><th>Port</th><th>Kind</th><th>Extension / calls go to</th><th class="opt">Now</th></tr></thead>
<tbody>
% for r in rows:
% fid = 'port-' + r['port']
<tr id="row-{{r['port']}}"><td>{{r['port']}}</td><td>{{r['kind'].upper()}}</td>
<td><input id="{{fid}}" name="{{fid}}" value="{{r['value']}}" inputmode="numeric" list="{{'port-extensions' if r['kind'] == 'fxs' else 'port-numbers'}}" placeholder="{{'extension, e.g. 1005' if r['kind'] == 'fxs' else 'number, e.g. 500'}}" aria-label="{{'extension of' if r['kind'] == 'fxs' else 'inbound number of'}} {{r['port']}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % fid if errors.get(fid) else ''}}>
% if errors.get(fid):
<small id="{{fid}}-error" class="field-error">{{errors[fid]}}</small>
% end
% if r['kind'] == 'fxs':
<div><label class="check"><input type="checkbox" id="cw-{{r['port']}}" name="cw-{{r['port']}}" value="on"{{' checked' if r['call_waiting'] else ''}}> call waiting <small class="muted">(off: a second caller gets busy, as a fax line needs)</small></label></div>
% end
% if r['kind'] == 'fxo':
<div><small id="line-summary-{{r['port']}}"><a href="/ports/{{r['port']}}/line" id="line-{{r['port']}}">Line settings</a>: {{', '.join('%s %s' % kv for kv in r['line'].items()) if r['line'] else 'region defaults'}}</small></div>
% end
</td>
<td class="opt">
% if r['live']:
{{r['live'].get('state', '?')}}{{' · in a call' if r['live'].get('in_call') else ''}} <small class="muted">{{r['live'].get('region', '')}}</small>
% else:
<span class="muted">not on this board</span>
% end
</td></tr>
% end
</tbody>
</table>
</div>
<datalist id="port-extensions">
% for n in extensions:
<option value="{{n}}"></option>
% end
</datalist>
<datalist id="port-numbers">
% for n in numbers + extensions:
<option value="{{n}}"></option>
% end
</datalist>
<button type="submit" id="save-ports">Save ports</button>
</form>
% end
