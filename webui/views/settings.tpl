% rebase('layout', title='Settings')
<h1>Settings</h1>
<p>Every setting of the box, checked as a whole: if one field is wrong nothing is changed.</p>
<form method="post" action="/settings" novalidate id="settings">
<input type="hidden" name="csrf" value="{{csrf}}">
% for group, fields in groups:
<fieldset>
<legend><strong>{{group}}</strong></legend>
% for f in fields:
<label for="{{f['id']}}">{{f['name']}}
% err = errors.get(f['name'])
% if f['choices']:
<select id="{{f['id']}}" name="{{f['name']}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % f['id'] if err else ''}}>
% for c in f['choices']:
<option value="{{c}}"{{!' selected' if str(f['value']) == c else ''}}>{{c}}</option>
% end
</select>
% else:
<input id="{{f['id']}}" name="{{f['name']}}" value="{{f['value']}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % f['id'] if err else ''}}>
% end
% if err:
<small id="{{f['id']}}-error" class="field-error">{{err}}</small>
% else:
<small>{{f['help']}}{{' (%g to %g)' % (f['low'], f['high']) if f['low'] is not None and f['high'] is not None else ''}} · default {{f['default']}}</small>
% end
</label>
% end
</fieldset>
% end
<button type="submit">Save settings</button>
</form>
