<label for="{{name}}">{{label}}
<input id="{{name}}" name="{{name}}" type="{{get('type', 'text')}}" value="{{get('value', '')}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % name if get('error') else ''}}{{!' ' + get('attrs') if get('attrs') else ''}}>
% if get('error'):
<small id="{{name}}-error" class="field-error">{{error}}</small>
% elif get('hint'):
<small>{{hint}}</small>
% end
</label>
