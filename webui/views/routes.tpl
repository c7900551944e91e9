% rebase('layout', title='Outbound routes')
<link rel="stylesheet" href="{{css}}">
<h1>Outbound routes</h1>
<p>A number dialled on this box that is none of its own (extensions, IVR and queue numbers, feature codes are never routed out) leaves on an FXO line by a route. The routes are tried <strong>in order and the first whose pattern matches the whole number wins</strong>, so put the narrow ones (911) before the wide ones (9X.).</p>
<p class="muted" id="pattern-help">Patterns: digits, <code>*</code> and <code>#</code> stand for themselves; <code>X</code> is any digit, <code>Z</code> 1-9, <code>N</code> 2-9, <code>[1-5]</code> or <code>[147]</code> one of a set, and a final <code>.</code> one or more further digits. <strong>Strip</strong> drops that many leading digits, <strong>prepend</strong> puts digits in front: <code>9NXXXXXX</code> strip 1 sends 95551234 as 5551234. <strong>Lines</strong> are the FXO ports to try, in that order; empty: any line.</p>
% if not configured:
<p class="warn" id="default-route">
% if default:
No routes are configured, so the default route from the setting <code>analog.trunk_prefix</code> ({{prefix}}) is in force: pattern <code>{{default.pattern.text}}</code>, strip {{default.strip}}, any line. Adding a route replaces it.
% else:
No routes are configured and <code>analog.trunk_prefix</code> is '-': no number is routed out. Add a route below.
% end
</p>
% end
<p class="muted" id="trunk-lines">
% if trunks:
FXO lines configured on the <a href="/ports">Ports</a> page: {{', '.join(trunks)}}.
% else:
No FXO line is configured yet: give one an inbound number on the <a href="/ports">Ports</a> page before naming it here.
% end
</p>
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<form method="post" action="/routes" novalidate id="routes-form" class="config">
<input type="hidden" name="csrf" value="{{csrf}}">
<input type="hidden" name="seen" value="{{seen}}">
<input type="hidden" name="rows" value="{{len(rows)}}">
<div class="scroll">
<table id="route-list" class="route-rows">
<thead><tr><th>Order</th><th>Name</th><th>Pattern</th><th>Strip</th><th>Prepend</th><th>Lines</th><th>Remove</th></tr></thead>
<tbody>
% cols = (('order', 'inputmode="numeric"', 'order of'), ('name', 'placeholder="local"', 'name of'), ('pattern', 'placeholder="9NXXXXXX" autocapitalize="characters"', 'pattern of'), ('strip', 'inputmode="numeric" placeholder="0"', 'digits stripped by'), ('prepend', 'inputmode="tel"', 'digits prepended by'), ('lines', 'list="route-lines" placeholder="any"', 'lines of'))
% for i, r in enumerate(rows):
% what = 'the new route' if i == len(rows) - 1 else 'route %d' % (i + 1)
<tr id="route-{{i}}"{{!' class="new"' if i == len(rows) - 1 else ''}}>
% for key, attrs, label in cols:
% fid = 'route-%d-%s' % (i, key)
<td><input id="{{fid}}" name="{{fid}}" value="{{r[key]}}" aria-label="{{label}} {{what}}" {{!attrs}}{{!' aria-invalid="true" aria-describedby="%s-error"' % fid if errors.get(fid) else ''}}>
% if errors.get(fid):
<small id="{{fid}}-error" class="field-error">{{errors[fid]}}</small>
% end
</td>
% end
<td>
% if i < len(rows) - 1:
<label class="check"><input type="checkbox" id="route-{{i}}-remove" name="route-{{i}}-remove" value="yes"{{!' checked' if r['remove'] else ''}} aria-label="remove {{what}}"> remove</label>
% else:
<small class="muted">new</small>
% end
</td></tr>
% end
</tbody>
</table>
</div>
<datalist id="route-lines">
% for n in trunks:
<option value="{{n}}"></option>
% end
% if len(trunks) > 1:
<option value="{{', '.join(trunks)}}"></option>
% end
</datalist>
<p class="muted">Fill the last row to add a route. To move a route, give it another order number (1 is tried first); the others make room.</p>
<button type="submit" id="save-routes">Save routes</button>
</form>

<h2 id="try">Try a number</h2>
<form method="get" action="/routes#try" id="try-form" class="config">
<div class="dest-row">
<input id="try-number" name="try" value="{{tried}}" inputmode="tel" placeholder="95551234" aria-label="number to try">
<button type="submit" id="try-button">Show the route</button>
</div>
</form>
% if result:
<p id="try-result" role="status">
% if result['kind'] == 'route':
{{tried}} takes route <strong>{{result['name']}}</strong> (<code>{{result['pattern']}}</code>): <strong>{{result['outside']}}</strong> is dialled on {{', '.join(result['lines']) if result['lines'] else 'any FXO line'}}{{' (tried in that order)' if len(result['lines']) > 1 else ''}}.
% else:
{{result['text']}}
% end
</p>
% end
