% # A destination: what kind (select) and which one (text with the known targets offered).
% err_goto, err_target = errors.get(prefix + '-goto'), errors.get(prefix + '-target')
<fieldset class="dest" id="{{prefix}}">
<legend>{{label}}</legend>
<div class="dest-row">
<label for="{{prefix}}-goto">Go to
<select id="{{prefix}}-goto" name="{{prefix}}-goto"{{!' aria-invalid="true" aria-describedby="%s-goto-error"' % prefix if err_goto else ''}}>
% if get('none'):
<option value="">{{none}}</option>
% end
% for k in kinds:
<option value="{{k}}"{{!' selected' if goto == k else ''}}>{{k}}</option>
% end
</select>
% if err_goto:
<small id="{{prefix}}-goto-error" class="field-error">{{err_goto}}</small>
% end
</label>
<label for="{{prefix}}-target">Target
<input id="{{prefix}}-target" name="{{prefix}}-target" value="{{target}}" list="targets" placeholder="1001, sales, main…"{{!' aria-invalid="true" aria-describedby="%s-target-error"' % prefix if err_target else ''}}>
% if err_target:
<small id="{{prefix}}-target-error" class="field-error">{{err_target}}</small>
% end
</label>
</div>
</fieldset>
