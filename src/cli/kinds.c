#include "cli/kinds.h"
#include "image/kinds.h"

static const char *const header_names[] = {
	[IMG_HDR_COMMON] = "common",
	[IMG_HDR_OWN] = "own",
	[IMG_HDR_NONE] = "none",
};

static const char *type_name(const ProtobufCMessageDescriptor *d)
{
	return d ? d->name : "-";
}

void print_image_kinds(FILE *out)
{
	for (int i = 0; i < IMG_NR_KINDS; i++) {
		const struct img_kind_desc *k = &img_kinds[i];
		if (k->magic)
			fprintf(out, "%s\t%#x", k->name, k->magic);
		else
			fprintf(out, "%s\t-", k->name);
		fprintf(out, "\t%s\t%s\t%s\t%s\n", header_names[k->header], type_name(k->entry), type_name(k->head),
			k->optional ? "optional" : "required");
	}
}
