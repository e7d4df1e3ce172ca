/* label-dialog.c — the dialog of an interactive Label…: what GIMP would
 * generate for the procedure's arguments, made for people.  The model is
 * picked from the models agriclip knows (ui's model chooser, downloads
 * included), the label set from the installed ones (ui's label-set chooser
 * and editor); the adapter, the number of labels and what to classify stay
 * plain fields.  The choice is written back into the procedure's config,
 * so that scripts and "Repeat" see the same arguments as before. */
#include "agriclip-plugin.h"

typedef struct
{
  GtkWidget *dialog, *models, *label_sets, *adapter, *message;
} LabelDialog;

/* A label with a mnemonic for control, in row of grid; control reads as
 * name to screen readers. */
static void
attach (GtkGrid *grid, int row, const char *mnemonic, const char *name, GtkWidget *control)
{
  GtkWidget *label = gtk_label_new_with_mnemonic (mnemonic);
  gtk_label_set_xalign (GTK_LABEL (label), 0.0f);
  gtk_label_set_mnemonic_widget (GTK_LABEL (label), control);
  atk_object_set_name (gtk_widget_get_accessible (control), name);
  gtk_widget_set_hexpand (control, TRUE);
  gtk_grid_attach (grid, label, 0, row, 1, 1);
  gtk_grid_attach (grid, control, 1, row, 1, 1);
}

/* The config's values shown in the choosers. */
static void
preselect (LabelDialog *d, GimpProcedureConfig *config)
{
  g_autoptr (GFile) model = NULL, adapter = NULL;
  g_autofree char *labels = NULL;
  g_object_get (config, "model", &model, "labels", &labels, "adapter", &adapter, NULL);
  char *model_path = model ? g_file_get_path (model) : NULL;
  g_autofree char *resolved = plugin_resolve_model (model_path);
  if (resolved)
    agc_model_chooser_select (AGC_MODEL_CHOOSER (d->models), resolved);
  if (labels && *labels)
    agc_label_set_chooser_select (AGC_LABEL_SET_CHOOSER (d->label_sets), labels);
  g_autofree char *adapter_path = adapter ? g_file_get_path (adapter) : NULL;
  if (adapter_path)
    gtk_file_chooser_set_filename (GTK_FILE_CHOOSER (d->adapter), adapter_path);
}

/* Writes the choice into config; FALSE (and says why in the dialog) when
 * something needed is missing. */
static gboolean
store_choice (LabelDialog *d, GimpProcedureConfig *config)
{
  g_autofree char *model = agc_model_chooser_get_path (AGC_MODEL_CHOOSER (d->models));
  g_autofree char *labels = agc_label_set_chooser_get_selected (
    AGC_LABEL_SET_CHOOSER (d->label_sets));
  g_autofree char *adapter = gtk_file_chooser_get_filename (GTK_FILE_CHOOSER (d->adapter));
  const char *problem = NULL;
  if (!model)
    problem = _("Choose a model that is downloaded, download one, or browse to a model folder.");
  else if (!labels && !adapter)
    problem = _("Choose a label set, or an adapter.");
  if (problem)
    {
      gtk_label_set_text (GTK_LABEL (d->message), problem);
      gtk_widget_show (d->message);
      return FALSE;
    }
  agc_ui_add_recent_model_folder (model);
  g_autoptr (GFile) model_file = g_file_new_for_path (model);
  g_autoptr (GFile) adapter_file = adapter ? g_file_new_for_path (adapter) : NULL;
  g_object_set (config, "model", model_file, "adapter", adapter_file, NULL);
  if (labels)
    g_object_set (config, "labels", labels, NULL);
  return TRUE;
}

static GtkWidget *
fields (LabelDialog *d, GimpProcedureConfig *config)
{
  GtkGrid *grid = GTK_GRID (gtk_grid_new ());
  gtk_grid_set_row_spacing (grid, 6);
  gtk_grid_set_column_spacing (grid, 12);
  GtkWidget *adapter_box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  d->adapter = gtk_file_chooser_button_new (_("Choose an adapter"), GTK_FILE_CHOOSER_ACTION_OPEN);
  GtkWidget *clear = gtk_button_new_with_mnemonic (_("Clea_r"));
  atk_object_set_name (gtk_widget_get_accessible (clear), _("Clear adapter"));
  g_signal_connect_swapped (clear, "clicked", G_CALLBACK (gtk_file_chooser_unselect_all),
                            d->adapter);
  gtk_box_pack_start (GTK_BOX (adapter_box), d->adapter, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (adapter_box), clear);
  GtkWidget *adapter_label = gtk_label_new_with_mnemonic (_("Ada_pter (optional):"));
  gtk_label_set_xalign (GTK_LABEL (adapter_label), 0.0f);
  gtk_label_set_mnemonic_widget (GTK_LABEL (adapter_label), d->adapter);
  atk_object_set_name (gtk_widget_get_accessible (d->adapter), _("Adapter"));
  gtk_widget_set_tooltip_text (d->adapter, _("An adapter trained for this model: its classes "
                                             "replace the label set's"));
  // adapters from the training window: their folder is a shortcut, opened first
  g_autofree char *adapters_dir = agc_ui_adapters_dir ();
  if (g_file_test (adapters_dir, G_FILE_TEST_IS_DIR))
    {
      gtk_file_chooser_add_shortcut_folder (GTK_FILE_CHOOSER (d->adapter), adapters_dir, NULL);
      gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (d->adapter), adapters_dir);
    }
  gtk_grid_attach (grid, adapter_label, 0, 0, 1, 1);
  gtk_grid_attach (grid, adapter_box, 1, 0, 1, 1);
  // A number of one or two digits: as wide as that, not the whole row.
  GtkWidget *top_k = gtk_spin_button_new_with_range (1, 100, 1);
  g_object_bind_property (config, "top-k", top_k, "value",
                          G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
  attach (grid, 1, _("_Top labels:"), _("Top labels"), top_k);
  gtk_widget_set_hexpand (top_k, FALSE);
  gtk_widget_set_halign (top_k, GTK_ALIGN_START);
  attach (grid, 2, _("_Image or layers:"), _("What to classify"),
          gimp_prop_choice_combo_box_new (G_OBJECT (config), "source"));
  return GTK_WIDGET (grid);
}

gboolean
label_dialog_run (GimpProcedure *procedure, GimpProcedureConfig *config)
{
  (void) procedure;
  gimp_ui_init (PLUG_IN_BINARY);
  LabelDialog d = { 0 };
  d.dialog = gimp_dialog_new (_("AgriCLIP: Label"), PLUG_IN_BINARY "-label", NULL, 0,
                              gimp_standard_help_func, LABEL_PROC, _("_Cancel"),
                              GTK_RESPONSE_CANCEL, _("_Label"), GTK_RESPONSE_OK, NULL);
  int order[] = { GTK_RESPONSE_OK, GTK_RESPONSE_CANCEL };
  gimp_dialog_set_alternative_button_order_from_array (GIMP_DIALOG (d.dialog),
                                                       G_N_ELEMENTS (order), order);
  gtk_dialog_set_default_response (GTK_DIALOG (d.dialog), GTK_RESPONSE_OK);
  gtk_window_set_default_size (GTK_WINDOW (d.dialog), 760, 620);

  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  g_object_set (box, "margin", 12, NULL);
  d.models = agc_model_chooser_new ();
  d.label_sets = agc_label_set_chooser_new ();
  d.message = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (d.message), 0.0f);
  gtk_label_set_line_wrap (GTK_LABEL (d.message), TRUE);
  gtk_box_pack_start (GTK_BOX (box), d.models, TRUE, TRUE, 0);
  gtk_box_pack_start (GTK_BOX (box), d.label_sets, TRUE, TRUE, 0);
  gtk_container_add (GTK_CONTAINER (box), fields (&d, config));
  gtk_container_add (GTK_CONTAINER (box), d.message);
  gtk_box_pack_start (GTK_BOX (gtk_dialog_get_content_area (GTK_DIALOG (d.dialog))), box, TRUE,
                      TRUE, 0);
  gtk_widget_show_all (box);
  gtk_widget_hide (d.message);
  preselect (&d, config);
  // Return labels at once: the focus starts on the Label button, not in a list.
  gtk_widget_grab_focus (gtk_dialog_get_widget_for_response (GTK_DIALOG (d.dialog),
                                                              GTK_RESPONSE_OK));

  gboolean ok = FALSE;
  while (gimp_dialog_run (GIMP_DIALOG (d.dialog)) == GTK_RESPONSE_OK)
    if ((ok = store_choice (&d, config)))
      break;
  gtk_widget_destroy (d.dialog);
  return ok;
}
