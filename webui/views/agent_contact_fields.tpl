<fieldset class="row">
% include('field', name='number', label='Number', value=form.get('number', ''), error=errors.get('number'), attrs='inputmode="tel" placeholder="+441632960000"')
% include('field', name='name', label='Name', value=form.get('name', ''), error=errors.get('name'), attrs='placeholder="Ada Lovelace"')
% include('field', name='company', label='Company', value=form.get('company', ''), error=errors.get('company'))
</fieldset>
<label for="notes">Notes
<textarea id="notes" name="notes" rows="3"{{!' aria-invalid="true" aria-describedby="notes-error"' if errors.get('notes') else ''}}>{{form.get('notes', '')}}</textarea>
</label>
% if errors.get('notes'):
<small id="notes-error" class="field-error">{{errors['notes']}}</small>
% end
