% rebase('layout', title='Extensions')
<h1>Extensions</h1>
<form method="post" action="/extensions" novalidate class="add">
<input type="hidden" name="csrf" value="{{csrf}}">
<fieldset class="row">
% include('field', name='number', label='Number', value=form.get('number', ''), error=errors.get('number'), attrs='inputmode="numeric" placeholder="1004"')
% include('field', name='name', label='Name', value=form.get('name', ''), error=errors.get('name'), attrs='placeholder="Sales desk"')
</fieldset>
<button type="submit">Add extension</button>
</form>
<div class="scroll">
<table id="extensions">
<thead><tr><th>Number</th><th>Name</th><th class="opt">SIP password</th><th class="opt">Registered</th><th></th></tr></thead>
<tbody>
% for r in rows:
<tr id="ext-{{r['number']}}"><td>{{r['number']}}</td><td>{{r['name']}}</td><td class="opt"><span class="muted">hidden</span></td>
<td class="opt">{{'yes (%d)' % r['contacts'] if r['contacts'] else 'no'}}</td>
<td class="actions">
<form method="post" action="/extensions/{{r['number']}}/secret" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary small">New password</button></form>
<form method="post" action="/extensions/{{r['number']}}/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Remove</button></form>
</td></tr>
% end
% if not rows:
<tr><td colspan="5">No extensions yet: add the first above.</td></tr>
% end
</tbody>
</table>
</div>
