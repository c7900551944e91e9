<datalist id="targets">
% for kind, names in targets.items():
% for n in names:
<option value="{{n}}">{{kind}}</option>
% end
% end
</datalist>
